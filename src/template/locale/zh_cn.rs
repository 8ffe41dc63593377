//! 简体中文 (zh-CN): the built-in messages for Chinese teams. Keys are the English texts of the
//! built-in templates (`t("Status")`); full-width punctuation where Chinese text uses it.

use super::Table;

pub const TABLE: Table = Table {
    words: &[
        // The headline: "❌ VOD 工作流失败：launch.mp4".
        ("VOD workflow ", "VOD 工作流"),
        ("succeeded", "完成"),
        ("failed", "失败"),
        ("received", "已收到"),
        (": ", "："),
        // Field labels.
        ("Status", "状态"),
        ("Video ID", "视频 ID"),
        ("Workflow ID", "工作流 ID"),
        ("Task ID", "任务 ID"),
        ("Duration", "耗时"),
        ("Event time", "事件时间"),
        ("Nodes", "节点"),
        (":", "："),
        // Digests: "❌ VOD 汇总：287 个事件 · 285 个失败 · 2 个完成".
        ("VOD digest", "VOD 汇总"),
        ("While muted", "静默期间"),
        // The daily report.
        ("vodhook report", "vodhook 报告"),
        ("Events", "事件"),
        ("Workflows", "工作流"),
        ("Top failures", "主要失败"),
        ("e.g. video", "例如视频"),
        ("Failures per hour", "每小时失败数"),
        ("Notices", "通知"),
        ("sent", "已发送"),
        ("held", "暂存"),
        ("in digests", "合并发送"),
        ("queued", "排队中"),
        ("dead", "死信"),
        ("see", "见"),
        ("VOD API", "VOD API"),
        ("ok", "成功"),
        ("none", "无"),
        (
            "Counts of this instance only: without the redis store each instance counts its own.",
            "仅为本实例的计数：未配置 Redis 存储时，每个实例只统计自己的请求。",
        ),
        // Link pages (`/actions/<token>`).
        ("This link cannot be used", "此链接无法使用"),
        ("This action is being done right now: reload in a moment.", "此操作正在执行：请稍后刷新。"),
        ("Done", "已完成"),
        ("Already done", "已执行过"),
        ("Already done at", "已于"),
        ("Already done.", "已执行过。"),
        ("Silenced until", "已静默至"),
        ("silence", "静默"),
        ("Silence workflow", "静默工作流"),
        ("Confirm: silence", "确认静默"),
        ("Re-run workflow", "重新运行工作流"),
        ("Confirm: re-run", "确认重新运行"),
        ("Re-run submitted", "已提交重新运行"),
        ("Re-run queued: VOD did not take it yet", "重新运行已排队：VOD 尚未受理"),
        (
            "The outbox tries again; see `vodhook outbox list`.",
            "发件箱会再次尝试，见 `vodhook outbox list`。",
        ),
        (
            "Not re-run: this workflow was re-run for this video as often as allowed",
            "未重新运行：此视频的该工作流已达到允许的重新运行次数",
        ),
        ("Re-run", "重新运行"),
        ("Title", "标题"),
        ("Error code", "错误码"),
        ("For", "时长"),
        ("Link expires", "链接有效期至"),
        ("Nothing happens until you confirm.", "确认之前不会执行任何操作。"),
        ("No such page.", "没有这个页面。"),
        ("Not done, try again later", "未执行，请稍后重试"),
        ("events", "个事件"),
        ("other", "个其他"),
        // Resolved notices: "✅ 已恢复：launch.mp4".
        ("Resolved", "已恢复"),
        ("Resolves", "已恢复的失败任务"),
        ("Resolved after", "恢复用时"),
        ("Resolved since", "已恢复，恢复任务"),
        // Play links (`[vod] enrich`).
        ("Watch", "观看"),
        ("Silence", "静默"),
        ("Cover", "封面"),
        ("Links valid until", "链接有效期至"),
        ("Play links unavailable", "暂无播放链接"),
    ],
    statuses: &[("Succeed", "成功"), ("Failed", "失败")],
    units: ["天", "小时", "分", "秒"],
};
