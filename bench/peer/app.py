"""The peer for scripts/bench: what a user would deploy without vodhook.

Shaped like Alibaba Function Compute's custom-runtime Python sample (Flask under gunicorn):
log FC's invoke markers, json-decode the VOD event, decode every string inside it that holds
JSON (ActivityResults, Result, TriggerSource, TaskInput, ...) recursively, and log the result
as one line. Run: gunicorn -w 2 -k gthread --threads 4 -b 127.0.0.1:PORT app:app
"""

import json
import logging
import sys

from flask import Flask, request

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("vod-callback")

app = Flask(__name__)

MAX_DEPTH = 64


def decode_nested(value, depth=0):
    """Replaces every string that holds a JSON object or array by its decoded value."""
    if depth > MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: decode_nested(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_nested(v, depth + 1) for v in value]
    if isinstance(value, str):
        text = value.lstrip()
        if text[:1] in ("{", "["):
            try:
                return decode_nested(json.loads(text), depth + 1)
            except ValueError:
                return value
    return value


@app.route("/", defaults={"path": ""}, methods=["POST"])
@app.route("/<path:path>", methods=["POST"])
def callback(path):
    request_id = request.headers.get("x-fc-request-id", "")
    log.info("FC Invoke Start RequestId: %s", request_id)
    try:
        event = json.loads(request.get_data())
    except ValueError as err:
        return {"error": f"body is not JSON: {err}", "path": ""}, 400
    if not isinstance(event, dict) or not isinstance(event.get("EventType"), str):
        return {"error": "no string EventType", "path": "EventType"}, 400
    event = decode_nested(event)
    log.info(
        "event received %s status=%s video_id=%s %s",
        event.get("EventType"),
        event.get("Status"),
        event.get("VideoId"),
        json.dumps(event, ensure_ascii=False),
    )
    log.info("FC Invoke End RequestId: %s", request_id)
    return {"events": 1, "delivered": 1}
