//! AWS Lambda: the same handler behind `lambda_http`'s request and response conversions, so
//! Function URLs, API Gateway (REST and HTTP APIs) and ALB payloads all work.
//!
//! Lambda also delivers non-HTTP events to the same function: an EventBridge schedule (the
//! outbox drain timer). `lambda_http::run` would refuse those, so this takes the raw event,
//! recognises a scheduled event by its `source`/`detail-type`, and hands everything else to
//! `lambda_http`'s own adapter, which picks the response format of the request's origin.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use lambda_http::ext::RequestExt;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body, Service, service_fn};
use serde_json::Value;
use serde_json::value::RawValue;
use tracing::Instrument;

use crate::handler::{App, Origin};

/// Runs the Lambda runtime loop until the platform stops the process.
pub async fn run(app: Arc<App>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let app = app.clone();
        async move { handle_event(app, event).await }
    }))
    .await
}

/// An EventBridge scheduled event (`"source": "aws.events"`, `"detail-type": "Scheduled Event"`).
pub fn is_scheduled_event(raw: &str) -> bool {
    // Only an object: serde would also fill the probe from a two-element array.
    if !raw.trim_ascii_start().starts_with('{') {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        source: Option<&'a str>,
        #[serde(rename = "detail-type", borrow)]
        detail_type: Option<&'a str>,
    }
    serde_json::from_str::<Probe<'_>>(raw)
        .is_ok_and(|p| p.source == Some("aws.events") && p.detail_type == Some("Scheduled Event"))
}

async fn handle_event(
    app: Arc<App>,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Value, lambda_runtime::Error> {
    let LambdaEvent { payload, context } = event;
    let span = tracing::info_span!("request", request_id = %context.request_id);
    async move {
        if is_scheduled_event(payload.get()) {
            let report = app.scheduled().await;
            return Ok(serde_json::to_value(report)?);
        }
        let request: LambdaRequest = serde_json::from_str(payload.get())?;
        let mut adapter = Adapter::from(service_fn(|request: lambda_http::Request| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle_http(&app, request).await) }
        }));
        let response = adapter.call(LambdaEvent { payload: request, context }).await?;
        Ok(serde_json::to_value(response)?)
    }
    .instrument(span)
    .await
}

/// Converts the request to the core handler's types and back.
pub async fn handle_http(app: &App, request: lambda_http::Request) -> http::Response<Body> {
    let request_id = request.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_default();
    tracing::debug!(%request_id, "lambda http request");
    let (parts, body) = request.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    let response =
        app.handle(http::Request::from_parts(parts, bytes), Origin::Lambda, crate::clock::unix_now()).await;
    response.map(|bytes| match String::from_utf8(bytes.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(not_text) => Body::Binary(not_text.into_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_eventbridge_schedules_only() {
        let scheduled = r#"{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","account":"1","time":"2025-04-01T02:33:12Z","region":"us-east-1","resources":[],"detail":{}}"#;
        assert!(is_scheduled_event(scheduled));
        assert!(!is_scheduled_event(r#"{"version":"2.0","rawPath":"/","body":"{}"}"#));
        assert!(!is_scheduled_event("not json"));
        assert!(!is_scheduled_event(r#"["aws.events", "Scheduled Event"]"#));
    }
}
