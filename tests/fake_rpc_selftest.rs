//! Self-tests of the fake Solana RPC node (`tests/fake_rpc/`) and of the
//! builders that make transactions from the real recorded events. Fast, no
//! Kafka: every node here lives on 127.0.0.1 for one test.
//!
//! What they pin: the WebSocket protocol (subscription answers and errors,
//! notifications in the recorded shape, stale / dropped / refused
//! connections), the HTTP JSON-RPC methods (exact ledger slices, recorded
//! transactions, accounts, the standard error codes, injected 429s), TLS
//! with and without the right CA, and that every built transaction carries
//! the real event bytes where a reader of the logs, of the inner
//! instructions and of the account list expects them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod fake_rpc;

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fake_rpc::client::{self, HttpClient, next_json, subscribe, ws_connect};
use fake_rpc::events::{self, CurveWalk, RealEvent, SwapSpec, TradeSpec};
use fake_rpc::fixtures::{self, RealPool};
use fake_rpc::layout::{self, FieldType};
use fake_rpc::node::{FakeNode, Mode, NodeOptions, RateLimit, Transport};
use fake_rpc::tx::{EmitForm, Failure, LOG_TRUNCATED, Truncation, TxBuilder};
use fake_rpc::{EMIT_CPI_TAG, FOREIGN_MNFST, PUMP_FUN, PUMP_SWAP, ROUTER_DFLOW, Tx, TxVersion};
use serde_json::{Value, json};
use tungstenite::Message;

/// How long a test waits for something that must not happen (a frame from a
/// stale node). Waiting longer cannot make the test pass wrongly; the node
/// under test writes within milliseconds when it writes at all.
const SILENCE: Duration = Duration::from_millis(300);
const WAIT: Duration = Duration::from_secs(10);

fn trade(length: usize) -> RealEvent {
    events::real_event("TradeEvent", length)
}

/// The set of JSON key paths of a value (array elements collapsed): its shape.
fn shape(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let path = format!("{prefix}.{key}");
                out.insert(path.clone());
                shape(item, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                shape(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn shape_of(value: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    shape(value, "", &mut out);
    out
}

/// `Program data:` payloads of a log stack with the program on top of the
/// invoke stack at that line (`None` outside any invocation).
fn attributed_data(logs: &[String]) -> Vec<(Option<String>, Vec<u8>)> {
    let mut stack: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in logs {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["Program", id, "invoke", depth] => {
                assert_eq!(*depth, format!("[{}]", stack.len() + 1), "invoke depth in {line:?}");
                stack.push((*id).to_owned());
            }
            ["Program", id, "success"] | ["Program", id, "failed:", ..] => {
                assert_eq!(stack.pop().as_deref(), Some(*id), "unbalanced stack at {line:?}");
            }
            ["Program", "data:", payload] => {
                out.push((stack.last().cloned(), STANDARD.decode(payload).expect("base64 payload")))
            }
            _ => {}
        }
    }
    out
}

/// The event bytes carried as emit_cpi inner instructions of a
/// `getTransaction` result (of `program` only, when given), in order.
fn emit_cpi_payloads(result: &Value, program: Option<&str>) -> Vec<Vec<u8>> {
    let keys: Vec<String> = serde_json::from_value(result["transaction"]["message"]["accountKeys"].clone()).unwrap();
    result["meta"]["innerInstructions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["instructions"].as_array().unwrap().clone())
        .filter(|ix| program.is_none_or(|p| keys[ix["programIdIndex"].as_u64().unwrap() as usize] == p))
        .map(|ix| bs58::decode(ix["data"].as_str().unwrap()).into_vec().unwrap())
        .filter_map(|data| data.strip_prefix(&EMIT_CPI_TAG).map(<[u8]>::to_vec))
        .collect()
}

fn read_timeout(ws: &mut tungstenite::WebSocket<client::ClientStream>, timeout: Duration) {
    ws.get_ref().tcp().set_read_timeout(Some(timeout)).unwrap();
}

fn is_timeout(result: &Result<Message, tungstenite::Error>) -> bool {
    matches!(result, Err(tungstenite::Error::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

#[test]
fn a_subscriber_gets_published_transactions_in_the_recorded_shape() {
    let node = FakeNode::plain();
    let mut ws = ws_connect(&node).unwrap();
    let pump = subscribe(&mut ws, 1, PUMP_FUN);
    let swap = subscribe(&mut ws, 2, PUMP_SWAP);
    assert_ne!(pump, swap);
    assert!(pump >= NodeOptions::default().first_subscription_id);
    assert_eq!(node.subscriptions_made(), 2);
    assert!(node.wait_for_subscriptions(PUMP_FUN, 1, WAIT));

    let neither = Tx::from_logs(
        &fake_rpc::signature_from_seed(1),
        500,
        vec!["Program log: unrelated".into()],
        vec!["Vote111111111111111111111111111111111111111".into()],
    );
    let tx = TxBuilder::new(501).trade(trade(358)).build();
    let both = TxBuilder::new(502).trade(trade(225)).mention(PUMP_SWAP).build();
    node.publish(neither);
    node.publish(tx.clone());
    node.publish(both.clone());

    let raw = match ws.read().unwrap() {
        Message::Text(text) => text.as_str().to_owned(),
        other => panic!("unexpected frame {other:?}"),
    };
    assert!(raw.starts_with(r#"{"jsonrpc":"2.0","method":"logsNotification","params":{"result":{"context":{"slot":501},"value":{"signature":"#));
    let first: Value = serde_json::from_str(&raw).unwrap();
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(fake_rpc::fixtures_dir().join("rpc/logsNotification_pump_buy_1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(shape_of(&first), shape_of(&recorded), "a notification has exactly the recorded fields");
    assert_eq!(first["method"], "logsNotification");
    assert_eq!(first["params"]["subscription"], json!(pump));
    assert_eq!(first["params"]["result"]["context"]["slot"], json!(501));
    assert_eq!(first["params"]["result"]["value"]["signature"], json!(tx.signature));
    assert_eq!(first["params"]["result"]["value"]["err"], Value::Null);
    assert_eq!(first["params"]["result"]["value"]["logs"], json!(tx.logs));

    // The transaction mentioning both programs reaches both subscriptions.
    let (a, b) = (next_json(&mut ws), next_json(&mut ws));
    let subscriptions: BTreeSet<u64> = [&a, &b].iter().map(|m| m["params"]["subscription"].as_u64().unwrap()).collect();
    assert_eq!(subscriptions, BTreeSet::from([pump, swap]));
    for message in [&a, &b] {
        assert_eq!(message["params"]["result"]["value"]["signature"], json!(both.signature));
    }
    assert!(fake_rpc::wait_until(WAIT, || node.notifications_sent() == 3));
}

#[test]
fn subscription_requests_get_the_nodes_answers_and_errors() {
    let node = FakeNode::plain();
    let mut ws = ws_connect(&node).unwrap();
    let mut ask = |request: &str| {
        ws.send(Message::text(request)).unwrap();
        next_json(&mut ws)
    };
    let two = ask(&json!({"jsonrpc":"2.0","id":7,"method":"logsSubscribe","params":[{"mentions":[PUMP_FUN, PUMP_SWAP]},{"commitment":"confirmed"}]}).to_string());
    assert_eq!(two["error"]["code"], json!(-32602), "{two}");
    assert_eq!(two["id"], json!(7));
    let bad_key = ask(
        &json!({"jsonrpc":"2.0","id":8,"method":"logsSubscribe","params":[{"mentions":["not-a-key"]}]}).to_string()
    );
    assert_eq!(bad_key["error"]["code"], json!(-32602));
    let unknown = ask(&json!({"jsonrpc":"2.0","id":9,"method":"slotsUpdatesSubscribe","params":[]}).to_string());
    assert_eq!(unknown["error"]["code"], json!(-32601));
    let malformed = ask("{not json");
    assert_eq!(malformed["error"]["code"], json!(-32700));
    assert_eq!(malformed["id"], Value::Null);
    let ok = ask(&json!({"jsonrpc":"2.0","id":10,"method":"logsSubscribe","params":[{"mentions":[PUMP_FUN]},{"commitment":"confirmed"}]}).to_string());
    let id = ok["result"].as_u64().unwrap();
    assert_eq!(
        ask(&json!({"jsonrpc":"2.0","id":11,"method":"logsUnsubscribe","params":[id]}).to_string())["result"],
        json!(true)
    );
    let again = ask(&json!({"jsonrpc":"2.0","id":12,"method":"logsUnsubscribe","params":[id]}).to_string());
    assert_eq!(again["error"]["code"], json!(-32602));
    assert_eq!(node.live_subscriptions(PUMP_FUN), 0);
    assert_eq!(node.subscriptions_made(), 1);
    let logged: Vec<(String, Option<i64>)> = node
        .requests()
        .iter()
        .filter(|r| r.transport == Transport::WebSocket && r.method != "upgrade")
        .map(|r| (r.method.clone(), r.error_code))
        .collect();
    assert_eq!(logged.len(), 7);
    assert_eq!(logged[0], ("logsSubscribe".to_owned(), Some(-32602)));
}

#[test]
fn a_stale_node_sends_nothing_and_still_records_the_ledger() {
    let node = FakeNode::plain();
    let mut ws = ws_connect(&node).unwrap();
    let _ = subscribe(&mut ws, 1, PUMP_FUN);
    node.set_mode(Mode::Stale);
    assert_eq!(node.live_subscriptions(PUMP_FUN), 0);
    let tx = TxBuilder::new(900).trade(trade(358)).build();
    node.publish(tx.clone());
    ws.send(Message::Ping(b"alive?".to_vec().into())).unwrap();
    read_timeout(&mut ws, SILENCE);
    assert!(is_timeout(&ws.read()), "a stale connection sends no notification and no pong");

    // A connection opened while stale is upgraded but never answered.
    let mut late = ws_connect(&node).unwrap();
    late.send(Message::text(
        json!({"jsonrpc":"2.0","id":1,"method":"logsSubscribe","params":[{"mentions":[PUMP_FUN]}]}).to_string(),
    ))
    .unwrap();
    read_timeout(&mut late, SILENCE);
    assert!(is_timeout(&late.read()));

    // Backfill still finds what was published.
    let found = HttpClient::of(&node).result("getSignaturesForAddress", json!([PUMP_FUN, {"limit": 10}]));
    assert_eq!(found[0]["signature"], json!(tx.signature));

    // Back to normal: a new connection is served; the stale ones stay silent.
    node.set_mode(Mode::Normal);
    let mut fresh = ws_connect(&node).unwrap();
    let _ = subscribe(&mut fresh, 1, PUMP_FUN);
    let next = TxBuilder::new(901).trade(trade(358)).build();
    node.publish(next.clone());
    assert_eq!(next_json(&mut fresh)["params"]["result"]["value"]["signature"], json!(next.signature));
    assert!(is_timeout(&ws.read()));
    assert_eq!(node.ws_connections_accepted(), 3);
}

#[test]
fn current_connections_can_go_stale_while_reconnects_are_served() {
    let node = FakeNode::plain();
    let mut old = ws_connect(&node).unwrap();
    let _ = subscribe(&mut old, 1, PUMP_FUN);
    assert_eq!(node.make_current_stale(), 1);
    assert_eq!(node.mode(), Mode::Normal);
    let mut new = ws_connect(&node).unwrap();
    let _ = subscribe(&mut new, 1, PUMP_FUN);
    let tx = TxBuilder::new(10).trade(trade(266)).build();
    node.publish(tx.clone());
    assert_eq!(next_json(&mut new)["params"]["result"]["value"]["signature"], json!(tx.signature));
    read_timeout(&mut old, SILENCE);
    assert!(is_timeout(&old.read()));
}

#[test]
fn dropping_connections_closes_every_websocket_without_a_close_frame() {
    let node = FakeNode::plain();
    let mut a = ws_connect(&node).unwrap();
    let mut b = ws_connect(&node).unwrap();
    let _ = subscribe(&mut a, 1, PUMP_FUN);
    let _ = subscribe(&mut b, 1, PUMP_SWAP);
    assert_eq!(node.drop_connections(), 2);
    for ws in [&mut a, &mut b] {
        match ws.read() {
            Ok(Message::Close(frame)) => panic!("the node sent a close frame: {frame:?}"),
            Ok(other) => panic!("a frame after the drop: {other:?}"),
            Err(tungstenite::Error::Protocol(_))
            | Err(tungstenite::Error::Io(_))
            | Err(tungstenite::Error::ConnectionClosed) => {}
            Err(other) => panic!("unexpected error kind: {other}"),
        }
    }
    assert!(fake_rpc::wait_until(WAIT, || node.open_websockets() == 0));
    let mut again = ws_connect(&node).unwrap();
    let _ = subscribe(&mut again, 1, PUMP_FUN);
}

#[test]
fn a_refusing_node_answers_503_to_upgrades_and_keeps_serving_http() {
    let node = FakeNode::plain();
    node.set_mode(Mode::RefuseWebSocket);
    match ws_connect(&node) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 503),
        Err(other) => panic!("expected HTTP 503, got {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
    assert_eq!(node.ws_upgrades_refused(), 1);
    assert_eq!(HttpClient::of(&node).result("getSlot", json!([])), json!(NodeOptions::default().base_slot));
    node.set_mode(Mode::Normal);
    assert!(ws_connect(&node).is_ok());
}

/// 30 transactions over 12 slots: a third mention pump.fun, a third PumpSwap,
/// a third both; one in five failed.
fn varied_ledger(node: &FakeNode) -> Vec<Tx> {
    let mut txs = Vec::new();
    for i in 0..30u64 {
        let slot = 1_000 + i / 3 * 4;
        let mut builder = TxBuilder::new(slot).seed(10_000 + i).block_time(1_790_000_000 + i as i64);
        builder = match i % 3 {
            0 => builder.trade(trade(358)),
            1 => builder.trade(events::real_event("BuyEvent", 360)),
            _ => builder.trade(trade(267)).mention(PUMP_SWAP),
        };
        if i % 5 == 4 {
            builder = builder.failed(Failure::AfterEvents(6002));
        }
        txs.push(builder.build());
    }
    node.publish_all(txs.clone());
    txs
}

#[test]
fn signature_pages_are_exactly_the_ledger_slice_newest_first() {
    let node = FakeNode::plain();
    let txs = varied_ledger(&node);
    let http = HttpClient::of(&node);
    let expected: Vec<String> =
        txs.iter().rev().filter(|tx| tx.mentions(PUMP_FUN)).map(|tx| tx.signature.clone()).collect();
    assert_eq!(expected.len(), 20);

    let mut paged = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..10 {
        let mut config = json!({"limit": 7, "commitment": "confirmed"});
        if let Some(before) = &before {
            config["before"] = json!(before);
        }
        let page = http.result("getSignaturesForAddress", json!([PUMP_FUN, config]));
        let page = page.as_array().unwrap().clone();
        assert!(page.len() <= 7);
        if page.is_empty() {
            break;
        }
        for entry in &page {
            let keys: BTreeSet<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, BTreeSet::from(["signature", "slot", "err", "memo", "blockTime", "confirmationStatus"]));
        }
        before = page.last().map(|entry| entry["signature"].as_str().unwrap().to_owned());
        paged.extend(page.iter().map(|entry| entry["signature"].as_str().unwrap().to_owned()));
    }
    assert_eq!(paged, expected);

    let until = http.result("getSignaturesForAddress", json!([PUMP_FUN, {"until": expected[10]}]));
    let until: Vec<&str> = until.as_array().unwrap().iter().map(|e| e["signature"].as_str().unwrap()).collect();
    assert_eq!(until, expected[..10].iter().map(String::as_str).collect::<Vec<_>>());
    let window = http.result(
        "getSignaturesForAddress",
        json!([PUMP_FUN, {"before": expected[3], "until": expected[9], "limit": 1000}]),
    );
    assert_eq!(window.as_array().unwrap().len(), 5);

    let failed = txs.iter().find(|tx| tx.err.is_some() && tx.mentions(PUMP_FUN)).unwrap();
    let all = http.result("getSignaturesForAddress", json!([PUMP_FUN]));
    let entry = all.as_array().unwrap().iter().find(|e| e["signature"] == json!(failed.signature)).unwrap();
    assert_eq!(
        entry["err"],
        json!({"InstructionError": [failed.err.as_ref().unwrap()["InstructionError"][0], {"Custom": 6002}]})
    );
    assert_eq!(entry["blockTime"], json!(failed.block_time));
    assert_eq!(entry["slot"], json!(failed.slot));

    let unknown = fake_rpc::signature_from_seed(424_242);
    assert_eq!(http.result("getSignaturesForAddress", json!([PUMP_FUN, {"before": unknown}])), json!([]));
    assert_eq!(
        http.result("getSignaturesForAddress", json!([PUMP_FUN, {"until": unknown}])).as_array().unwrap().len(),
        20
    );
    for bad in
        [json!({"limit": 1001}), json!({"limit": 0}), json!({"commitment": "processed"}), json!({"before": "short"})]
    {
        let response = http.call("getSignaturesForAddress", json!([PUMP_FUN, bad])).unwrap();
        assert_eq!(response["error"]["code"], json!(-32602), "{bad}: {response}");
    }
}

#[test]
fn a_published_transaction_comes_back_from_get_transaction() {
    let node = FakeNode::plain();
    let event = trade(358);
    let tx = TxBuilder::new(77).trade_via(ROUTER_DFLOW, event.clone()).build();
    assert_eq!(tx.version, TxVersion::V0);
    node.publish(tx.clone());
    let http = HttpClient::of(&node);
    let config = json!({"encoding": "json", "maxSupportedTransactionVersion": 0, "commitment": "confirmed"});
    let result = http.result("getTransaction", json!([tx.signature, config]));
    assert_eq!(result["slot"], json!(77));
    assert_eq!(result["version"], json!(0));
    assert_eq!(result["blockTime"], json!(event.i64("timestamp").unwrap()));
    assert_eq!(result["meta"]["err"], Value::Null);
    assert_eq!(result["meta"]["logMessages"], json!(tx.logs));
    assert_eq!(result["transaction"]["signatures"], json!([tx.signature]));
    let keys: Vec<String> = serde_json::from_value(result["transaction"]["message"]["accountKeys"].clone()).unwrap();
    assert_eq!(keys, tx.account_keys);
    let cpi = emit_cpi_payloads(&result, Some(PUMP_FUN));
    assert_eq!(cpi, vec![event.bytes.clone()]);

    let old_client = http.call("getTransaction", json!([tx.signature, {"encoding": "json"}])).unwrap();
    assert_eq!(old_client["error"]["code"], json!(-32015));
    assert_eq!(http.result("getTransaction", json!([fake_rpc::signature_from_seed(5), config])), Value::Null);
    assert_eq!(http.call("getTransaction", json!(["xyz", config])).unwrap()["error"]["code"], json!(-32602));

    // A recorded transaction is served as recorded.
    let recorded = fixtures::graduated_market_sell();
    node.publish(recorded.clone());
    let served = http.result("getTransaction", json!([recorded.signature, config]));
    assert_eq!(&served, recorded.recorded.as_ref().unwrap());
}

#[test]
fn injected_http_failures_come_first_then_normal_answers() {
    let node = FakeNode::plain();
    let http = HttpClient::of(&node);
    node.fail_next_http(2, 429, Some(1));
    let body = json!({"jsonrpc":"2.0","id":3,"method":"getSlot","params":[]}).to_string();
    for _ in 0..2 {
        let answer = http.post(&body).unwrap();
        assert_eq!(answer.status, 429);
        assert_eq!(answer.header("retry-after"), Some("1"));
        assert_eq!(answer.json()["error"]["code"], json!(429));
        assert_eq!(answer.json()["id"], json!(3));
    }
    assert_eq!(http.post(&body).unwrap().status, 200);
    let statuses: Vec<u16> = node.requests_for("getSlot").iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 429, 200]);
    let times: Vec<_> = node.requests_for("getSlot").iter().map(|r| r.at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));

    node.fail_next_http(1, 503, None);
    let answer = http.post(&body).unwrap();
    assert_eq!((answer.status, answer.header("retry-after")), (503, None));

    node.set_rate_limit(Some(RateLimit { max_requests: 3, per: Duration::from_secs(600), retry_after_secs: Some(10) }));
    let statuses: Vec<u16> = (0..5).map(|_| http.post(&body).unwrap().status).collect();
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    node.set_rate_limit(None);
    assert_eq!(http.post(&body).unwrap().status, 200);
}

#[test]
fn bad_http_requests_get_the_standard_codes() {
    let node = FakeNode::plain();
    let http = HttpClient::of(&node);
    assert_eq!(http.post("{\"jsonrpc\":").unwrap().json()["error"]["code"], json!(-32700));
    assert_eq!(http.call("getBlockProduction2", json!([])).unwrap()["error"]["code"], json!(-32601));
    assert_eq!(http.call("getTransaction", json!([12])).unwrap()["error"]["code"], json!(-32602));
    assert_eq!(http.call("getAccountInfo", json!(["1111"])).unwrap()["error"]["code"], json!(-32602));
    let batch = http
        .post(r#"[{"jsonrpc":"2.0","id":1,"method":"getHealth"},{"jsonrpc":"2.0","id":2,"method":"nope"}]"#)
        .unwrap()
        .json();
    assert_eq!(batch[0]["result"], json!("ok"));
    assert_eq!(batch[1]["error"]["code"], json!(-32601));
    assert_eq!(http.post("{}").unwrap().json()["error"]["code"], json!(-32600));
    let wrong_path = HttpClient::new(&format!("{}other", node.http_url()), None);
    assert_eq!(wrong_path.post("{}").unwrap().status, 404);
}

#[test]
fn a_node_on_its_own_path_serves_only_that_path() {
    let node = FakeNode::start(NodeOptions { path: "/key-123".into(), ..NodeOptions::default() });
    assert!(node.http_url().ends_with("/key-123") && node.ws_url().ends_with("/key-123"));
    assert_eq!(HttpClient::of(&node).result("getHealth", json!([])), json!("ok"));
    assert!(ws_connect(&node).is_ok());
    let root = HttpClient::new(&node.http_url().replace("/key-123", "/"), None);
    assert_eq!(root.post("{}").unwrap().status, 404);
    assert!(client::ws_connect_url(&node.ws_url().replace("/key-123", "/"), None).is_err());
}

#[test]
fn a_tls_node_serves_clients_that_trust_its_ca_and_no_others() {
    let node = FakeNode::start(NodeOptions { tls: true, ..NodeOptions::default() });
    assert!(node.http_url().starts_with("https://127.0.0.1:") && node.ws_url().starts_with("wss://127.0.0.1:"));
    assert_eq!(HttpClient::of(&node).result("getHealth", json!([])), json!("ok"));
    let mut ws = ws_connect(&node).unwrap();
    let _ = subscribe(&mut ws, 1, PUMP_FUN);
    let tx = TxBuilder::new(3).trade(trade(358)).build();
    node.publish(tx.clone());
    assert_eq!(next_json(&mut ws)["params"]["result"]["value"]["signature"], json!(tx.signature));

    let other = node.other_ca_pem_path().unwrap();
    assert!(HttpClient::new(&node.http_url(), Some(&other)).post("{}").is_err());
    assert!(HttpClient::new(&node.http_url(), None).post("{}").is_err());
    assert!(client::ws_connect_url(&node.ws_url(), Some(&other)).is_err());
    let by_name = HttpClient::new(&node.http_url().replace("127.0.0.1", "localhost"), node.ca_pem_path().as_deref());
    assert_eq!(by_name.result("getHealth", json!([])), json!("ok"), "the certificate names localhost too");
}

#[test]
fn registered_accounts_come_back_in_the_real_shape() {
    let node = FakeNode::plain();
    let pool = RealPool::current();
    let address = pool.pubkey.clone().unwrap();
    node.set_account_full(&address, pool.account());
    let http = HttpClient::of(&node);
    let info = http.result("getAccountInfo", json!([address, {"encoding": "base64", "commitment": "confirmed"}]));
    assert_eq!(info["context"]["slot"], json!(node.slot()));
    assert_eq!(info["value"]["owner"], json!(PUMP_SWAP));
    assert_eq!(info["value"]["data"][1], json!("base64"));
    assert_eq!(STANDARD.decode(info["value"]["data"][0].as_str().unwrap()).unwrap(), pool.data);
    assert_eq!(info["value"]["space"], json!(301));
    let missing = bs58::encode(fake_rpc::pubkey_from_seed(9)).into_string();
    assert_eq!(http.result("getAccountInfo", json!([missing, {"encoding": "base64"}]))["value"], Value::Null);
    let many = http.result("getMultipleAccounts", json!([[address, missing], {"encoding": "base64"}]));
    assert_eq!(many["value"][0]["owner"], json!(PUMP_SWAP));
    assert_eq!(many["value"][1], Value::Null);
    let too_many: Vec<String> = (0..101).map(|i| bs58::encode(fake_rpc::pubkey_from_seed(i)).into_string()).collect();
    assert_eq!(
        http.call("getMultipleAccounts", json!([too_many, {"encoding": "base64"}])).unwrap()["error"]["code"],
        json!(-32602)
    );
}

#[test]
fn raw_frames_reach_every_served_connection() {
    let node = FakeNode::plain();
    let mut a = ws_connect(&node).unwrap();
    let mut b = ws_connect(&node).unwrap();
    let _ = subscribe(&mut a, 1, PUMP_FUN);
    let _ = subscribe(&mut b, 1, PUMP_FUN);
    let huge = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"logsNotification\",\"pad\":\"{}\"}}", "x".repeat(3 << 20));
    let unknown_sub = json!({"jsonrpc":"2.0","method":"logsNotification","params":{"result":{"context":{"slot":1},"value":{"signature":"x","err":null,"logs":[]}},"subscription":1}}).to_string();
    for text in ["{malformed", huge.as_str(), unknown_sub.as_str()] {
        assert_eq!(node.inject_raw(text), 2);
    }
    for ws in [&mut a, &mut b] {
        for text in ["{malformed", huge.as_str(), unknown_sub.as_str()] {
            match ws.read().unwrap() {
                Message::Text(got) => assert_eq!(got.as_str(), text),
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }
    assert_eq!(node.notifications_sent(), 0);
}

#[test]
fn connections_over_the_bound_are_closed_at_accept() {
    let node = FakeNode::start(NodeOptions { max_connections: 2, ..NodeOptions::default() });
    let _a = ws_connect(&node).unwrap();
    let _b = ws_connect(&node).unwrap();
    assert!(ws_connect(&node).is_err());
    assert_eq!(node.connections_rejected(), 1);
}

#[test]
fn every_recorded_event_decodes_at_the_computed_offsets_to_its_recorded_fields() {
    let all: Vec<RealEvent> = events::real_events().into_iter().chain(events::extra_events()).collect();
    assert_eq!(all.len(), 31 + 5);
    let program_data = std::fs::read_to_string(fake_rpc::fixtures_dir().join("program-data.txt")).unwrap();
    let lines: Vec<&str> = program_data.lines().filter(|l| !l.trim().is_empty()).collect();
    for (line, event) in lines.iter().zip(events::real_events()) {
        assert_eq!(*line, event.program_data_line());
    }
    for event in &all {
        let layout = event.layout();
        assert_eq!(layout.name, event.kind);
        let fields = layout.fields_in(&event.bytes).unwrap();
        let decoded = event.decoded.as_object().unwrap();
        assert_eq!(fields.len(), decoded.len(), "{} {}: every decoded field is found", event.kind, event.bytes.len());
        for field in &fields {
            assert_eq!(
                &layout::value_json(&event.bytes, field),
                &decoded[field.name],
                "{} {} field {}",
                event.kind,
                event.bytes.len(),
                field.name
            );
        }
    }
    for pool in fixtures::real_pools() {
        let fields = layout::POOL_ACCOUNT.fields_in(&pool.data).unwrap();
        assert!(fields.len() >= 9, "{}", pool.source);
        let wsol = "So11111111111111111111111111111111111111112";
        assert!(
            pool.pubkey_field("base_mint").unwrap() == wsol || pool.pubkey_field("quote_mint").unwrap() == wsol,
            "{}",
            pool.source
        );
    }
}

#[test]
fn derived_trades_rewrite_only_the_named_fields() {
    let mint = fake_rpc::pubkey_from_seed(1);
    for template in events::real_events().into_iter().filter(|e| e.kind == "TradeEvent") {
        let spec = TradeSpec {
            mint: Some(mint),
            timestamp: 1_800_000_123,
            sol_amount: 123_456_789,
            token_amount: 987_654_321,
            virtual_sol_reserves: 31_000_000_000,
            virtual_token_reserves: 1_000_000_000_000_000,
            real_sol_reserves: 1_000_000_000,
            real_token_reserves: 700_000_000_000_000,
            ..TradeSpec::default()
        };
        let derived = template.derive_trade(&spec).unwrap();
        assert_eq!(derived.bytes.len(), template.bytes.len());
        assert!(derived.derived);
        let layout = template.layout();
        let changed = [
            "mint",
            "timestamp",
            "sol_amount",
            "token_amount",
            "virtual_sol_reserves",
            "virtual_token_reserves",
            "real_sol_reserves",
            "real_token_reserves",
            "quote_amount",
            "virtual_quote_reserves",
            "real_quote_reserves",
            "fee",
            "creator_fee",
        ];
        let fields = layout.fields_in(&template.bytes).unwrap();
        let mut touched = vec![false; template.bytes.len()];
        for field in fields.iter().filter(|f| changed.contains(&f.name)) {
            touched[field.offset..field.offset + field.len].iter_mut().for_each(|t| *t = true);
        }
        for (i, (a, b)) in template.bytes.iter().zip(&derived.bytes).enumerate() {
            if !touched[i] {
                assert_eq!(a, b, "byte {i} of a {}-byte TradeEvent changed", template.bytes.len());
            }
        }
        assert_eq!(derived.pubkey("mint").unwrap(), mint);
        assert_eq!(derived.i64("timestamp").unwrap(), spec.timestamp);
        assert_eq!(derived.u64("token_amount").unwrap(), spec.token_amount);
        if template.is_sol_quoted() {
            assert_eq!(derived.u64("sol_amount").unwrap(), spec.sol_amount);
            if derived.has("quote_amount") {
                assert_eq!(derived.u64("quote_amount").unwrap(), spec.sol_amount);
            }
        } else {
            assert_eq!(derived.u64("sol_amount").unwrap(), 0);
            assert_eq!(derived.u64("quote_amount").unwrap(), spec.sol_amount);
        }
        if derived.has("fee") {
            assert_eq!(
                derived.u64("fee").unwrap(),
                events::fee_of(spec.sol_amount, derived.u64("fee_basis_points").unwrap())
            );
        }
        for field in &fields {
            assert_eq!(
                layout::value_json(&derived.bytes, field),
                derived.decoded[field.name],
                "decoded kept in step for {}",
                field.name
            );
        }
    }
    // A sell template refuses to become a buy (its ix_name says sell).
    assert!(trade(359).derive_trade(&TradeSpec { is_buy: Some(true), ..TradeSpec::default() }).is_err());
}

#[test]
fn derived_swaps_recompute_the_fees_as_the_program_does() {
    let recorded = events::extra_events().into_iter().find(|e| e.kind == "SellEvent").unwrap();
    let same = recorded
        .derive_swap(&SwapSpec {
            pool: None,
            timestamp: recorded.i64("timestamp").unwrap(),
            base_amount: recorded.u64("base_amount_in").unwrap(),
            quote_amount: recorded.u64("quote_amount_out").unwrap(),
            pool_base_reserves: recorded.u64("pool_base_token_reserves").unwrap(),
            pool_quote_reserves: recorded.u64("pool_quote_token_reserves").unwrap(),
        })
        .unwrap();
    assert_eq!(same.bytes, recorded.bytes, "re-deriving a recorded sell with its own numbers gives its own bytes");
    let buy = events::real_event("BuyEvent", 480);
    let pool = fake_rpc::pubkey_from_seed(77);
    let derived = buy
        .derive_swap(&SwapSpec {
            pool: Some(pool),
            timestamp: 5,
            base_amount: 1_000,
            quote_amount: 2_000_000,
            pool_base_reserves: 9,
            pool_quote_reserves: 8,
        })
        .unwrap();
    assert_eq!(derived.pubkey("pool").unwrap(), pool);
    assert_eq!(derived.u64("quote_amount_in").unwrap(), 2_000_000);
    assert!(derived.u64("user_quote_amount_in").unwrap() > 2_000_000);
}

#[test]
fn a_curve_walk_follows_the_constant_product_in_real_layouts() {
    let mint = fake_rpc::pubkey_from_seed(42);
    let mut walk = CurveWalk::current(mint, 1_790_000_000, 7);
    let mut last_time = 1_790_000_000;
    let mut last_k = u128::from(walk.virtual_sol_reserves) * u128::from(walk.virtual_token_reserves);
    let (mut buys, mut sells) = (0, 0);
    for _ in 0..300 {
        let event = walk.step();
        assert!(event.bytes.len() == 358 || event.bytes.len() == 359);
        assert_eq!(event.pubkey("mint").unwrap(), mint);
        let time = event.i64("timestamp").unwrap();
        assert!(time >= last_time);
        last_time = time;
        let k = u128::from(event.u64("virtual_sol_reserves").unwrap())
            * u128::from(event.u64("virtual_token_reserves").unwrap());
        assert!(k >= last_k, "rounding keeps the product from falling");
        last_k = k;
        if event.bool("is_buy").unwrap() {
            buys += 1
        } else {
            sells += 1
        }
        assert_eq!(event.str("ix_name").unwrap(), if event.bool("is_buy").unwrap() { "buy" } else { "sell" });
    }
    assert!(buys > 50 && sells > 50);
}

/// Checks a built transaction from every side a reader looks at.
fn check_built(tx: &Tx, events: &[&RealEvent]) {
    let ours: Vec<(Option<String>, Vec<u8>)> = attributed_data(&tx.logs)
        .into_iter()
        .filter(|(owner, _)| matches!(owner.as_deref(), Some(PUMP_FUN) | Some(PUMP_SWAP)))
        .collect();
    let bytes: Vec<&Vec<u8>> = ours.iter().map(|(_, b)| b).collect();
    assert_eq!(bytes, events.iter().map(|e| &e.bytes).collect::<Vec<_>>());
    for ((owner, _), event) in ours.iter().zip(events) {
        assert_eq!(owner.as_deref(), Some(event.program.as_str()));
    }
    let json = tx.get_transaction_json();
    let keys: Vec<String> = serde_json::from_value(json["transaction"]["message"]["accountKeys"].clone()).unwrap();
    for event in events {
        assert!(keys.contains(&event.program));
        for key in event.pubkeys() {
            assert!(keys.contains(&key));
        }
    }
    let cpi = emit_cpi_payloads(&json, None);
    assert_eq!(cpi, events.iter().map(|e| e.bytes.clone()).collect::<Vec<_>>());
    for line in &tx.logs {
        if let Some(rest) = line.strip_suffix(" compute units") {
            let words: Vec<&str> = rest.split(' ').collect();
            let used: u64 = words[3].parse().unwrap();
            let of: u64 = words[5].parse().unwrap();
            assert!(used <= of, "{line}");
        }
    }
}

#[test]
fn built_transactions_carry_the_real_event_bytes_in_realistic_stacks() {
    let buy = trade(358);
    let swap_buy = events::real_event("BuyEvent", 424);
    let swap_sell = events::real_event("SellEvent", 417);
    let complete = events::real_event("CompleteEvent", 144);
    let migration = events::extra_events().into_iter().find(|e| e.kind == "CompletePumpAmmMigrationEvent").unwrap();

    let direct = TxBuilder::new(1).trade(buy.clone()).build();
    assert_eq!(&direct.logs[..4], &fixtures::real_notifications()[0].logs[..4], "compute budget first, as recorded");
    assert!(direct.logs.contains(&"Program 6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P invoke [1]".to_owned()));
    assert!(direct.logs.contains(&"Program log: Instruction: Buy".to_owned()));
    assert!(direct.logs.iter().any(|l| l.starts_with("Program return: pfeeUxB6jkeY1Hxd7CsFCAjcbHA9rWtchMGdZ6VojVZ ")));
    check_built(&direct, &[&buy]);

    let routed = TxBuilder::new(2).trade_via(ROUTER_DFLOW, swap_sell.clone()).build();
    assert!(routed.logs.contains(&format!("Program {PUMP_SWAP} invoke [2]")));
    check_built(&routed, &[&swap_sell]);

    let several = TxBuilder::new(3)
        .trade(swap_buy.clone())
        .invoke(PUMP_FUN, "Buy", vec![buy.clone(), complete.clone()], None)
        .invoke(PUMP_FUN, "MigrateV2", vec![migration.clone()], None)
        .build();
    check_built(&several, &[&swap_buy, &buy, &complete, &migration]);

    let log_only = TxBuilder::new(4).emit(EmitForm::LogOnly).trade(buy.clone()).build();
    assert_eq!(log_only.logs.iter().filter(|l| l.as_str() == format!("Program {PUMP_FUN} invoke [2]")).count(), 0);
    let cpi_only = TxBuilder::new(5).emit(EmitForm::CpiOnly).trade(buy.clone()).build();
    assert!(!cpi_only.logs.iter().any(|l| l.starts_with("Program data: ")));
    assert!(
        cpi_only
            .inner_instructions
            .to_string()
            .contains(&bs58::encode([EMIT_CPI_TAG.to_vec(), buy.bytes.clone()].concat()).into_string())
    );
}

#[test]
fn a_foreign_lookalike_line_sits_on_the_foreign_program() {
    let real = trade(358);
    let fake = real.with_u64("sol_amount", 1).unwrap();
    let tx = TxBuilder::new(9).trade(real.clone()).foreign_lookalike(&fake).build();
    let data = attributed_data(&tx.logs);
    assert_eq!(data.len(), 2);
    assert_eq!(data[0], (Some(PUMP_FUN.to_owned()), real.bytes.clone()));
    assert_eq!(data[1], (Some(FOREIGN_MNFST.to_owned()), fake.bytes.clone()));
    assert_eq!(layout::layout_of(&data[1].1).unwrap().name, "TradeEvent", "same discriminator as pump.fun's own");
    assert!(tx.mentions(PUMP_FUN) && tx.mentions(FOREIGN_MNFST));

    let recorded = fixtures::recorded_foreign_payloads();
    assert_eq!(recorded.len(), 2);
    let with_recorded = TxBuilder::new(10).trade(real).foreign(FOREIGN_MNFST, recorded.clone()).build();
    let foreign: Vec<Vec<u8>> = attributed_data(&with_recorded.logs)
        .into_iter()
        .filter(|(o, _)| o.as_deref() == Some(FOREIGN_MNFST))
        .map(|(_, b)| b)
        .collect();
    assert_eq!(foreign, recorded.iter().map(|p| STANDARD.decode(p).unwrap()).collect::<Vec<_>>());
}

#[test]
fn failed_transactions_say_why_as_the_runtime_prints_it() {
    let buy = trade(358);
    let after = TxBuilder::new(11).trade_via(ROUTER_DFLOW, buy.clone()).failed(Failure::AfterEvents(6002)).build();
    assert_eq!(after.err, Some(json!({"InstructionError": [2, {"Custom": 6002}]})));
    assert_eq!(after.logs.last().unwrap(), &format!("Program {ROUTER_DFLOW} failed: custom program error: 0x1772"));
    assert_eq!(attributed_data(&after.logs).len(), 1, "the event is logged; the transaction is reverted");
    let json = after.get_transaction_json();
    assert_eq!(json["meta"]["status"], json!({"Err": {"InstructionError": [2, {"Custom": 6002}]}}));

    let direct = TxBuilder::new(12).trade(buy.clone()).failed(Failure::AfterEvents(6001)).build();
    assert_eq!(direct.err, Some(json!({"InstructionError": [3, {"Custom": 6001}]})));
    assert!(direct.logs.last().unwrap().ends_with("failed: custom program error: 0x1771"));

    let inside = TxBuilder::new(13).trade(buy).failed(Failure::InProgram(6002)).build();
    assert!(attributed_data(&inside.logs).is_empty());
    assert!(inside.logs.iter().any(|l| l.contains("Error Code: TooMuchSolRequired. Error Number: 6002.")));
    assert_eq!(inside.logs.last().unwrap(), &format!("Program {PUMP_FUN} failed: custom program error: 0x1772"));
    assert_eq!(inside.err, Some(json!({"InstructionError": [2, {"Custom": 6002}]})));
}

#[test]
fn truncated_logs_stop_at_the_nodes_line_and_keep_the_inner_instructions() {
    let first = trade(358);
    let second = events::real_event("BuyEvent", 480);
    let tx =
        TxBuilder::new(14).trade(first.clone()).trade(second.clone()).truncated(Truncation::BeforeEvent(1)).build();
    assert_eq!(tx.logs.last().unwrap(), LOG_TRUNCATED);
    let data: Vec<Vec<u8>> = attributed_data(&tx.logs[..tx.logs.len() - 1]).into_iter().map(|(_, b)| b).collect();
    assert_eq!(data, vec![first.bytes.clone()]);
    assert!(
        tx.inner_instructions
            .to_string()
            .contains(&bs58::encode([EMIT_CPI_TAG.to_vec(), second.bytes].concat()).into_string())
    );
    let cut = TxBuilder::new(15).trade(first).truncated(Truncation::AtLine(6)).build();
    assert_eq!(cut.logs.len(), 7);
}

#[test]
fn recorded_fixtures_load_as_ledger_entries() {
    let notifications = fixtures::real_notifications();
    assert_eq!(notifications.len(), 2);
    for tx in &notifications {
        assert_eq!(bs58::decode(&tx.signature).into_vec().unwrap().len(), 64);
        assert_eq!(tx.slot, 440_741_846);
        assert!(tx.mentions(PUMP_FUN));
    }
    let transactions = fixtures::real_transactions();
    assert_eq!(transactions.len(), 4);
    for tx in &transactions {
        assert_eq!(bs58::decode(&tx.signature).into_vec().unwrap().len(), 64, "{}", tx.signature);
        assert!(!tx.logs.is_empty());
        assert!(tx.mentions(PUMP_FUN) || tx.mentions(PUMP_SWAP));
        let json = tx.get_transaction_json();
        assert_eq!(json["transaction"]["signatures"][0], json!(tx.signature));
        assert!(json["transaction"]["message"]["accountKeys"].is_array());
    }
    let create = fixtures::create_and_buy_logs();
    let kinds: Vec<&str> =
        attributed_data(&create.logs).iter().map(|(_, b)| layout::layout_of(b).map_or("other", |l| l.name)).collect();
    assert_eq!(kinds, vec!["CreateEvent", "other", "TradeEvent"]);
    let market: Vec<String> = fixtures::graduated_market_accounts().into_iter().map(|(k, _)| k).collect();
    assert_eq!(market.len(), 5);

    // Replayed into a node at a test's own slot, a recorded notification is
    // delivered with its recorded logs.
    let node = FakeNode::plain();
    let mut ws = ws_connect(&node).unwrap();
    let _ = subscribe(&mut ws, 1, PUMP_FUN);
    let replayed = notifications[1].clone().at(2_000, Some(1_790_000_000));
    node.publish(replayed.clone());
    let got = next_json(&mut ws);
    assert_eq!(got["params"]["result"]["value"]["logs"], json!(replayed.logs));
    assert_eq!(got["params"]["result"]["context"]["slot"], json!(2_000));
}

#[test]
fn a_pool_account_can_be_made_for_any_coin_from_a_real_one() {
    let real = RealPool::current();
    let base = fake_rpc::pubkey_from_seed(5);
    let wsol = bs58::decode("So11111111111111111111111111111111111111112").into_vec().unwrap().try_into().unwrap();
    let pool = real.with_mints(&base, &wsol).unwrap();
    assert_eq!(pool.data.len(), real.data.len());
    assert_eq!(pool.pubkey_field("base_mint").unwrap(), bs58::encode(base).into_string());
    let changed: Vec<usize> =
        real.data.iter().zip(&pool.data).enumerate().filter(|(_, (a, b))| a != b).map(|(i, _)| i).collect();
    let base_field = layout::POOL_ACCOUNT.field(&real.data, "base_mint").unwrap();
    assert!(changed.iter().all(|i| (base_field.offset..base_field.offset + 64).contains(i)));
    assert_eq!(base_field.ty, FieldType::Pubkey);
    assert_eq!(base_field.offset, 43, "base_mint sits where every reader of the recorded pools looks");
}

#[test]
fn a_down_node_resets_every_connection_and_comes_back_on_the_same_url() {
    let node = FakeNode::plain();
    let mut ws = ws_connect(&node).unwrap();
    let _ = subscribe(&mut ws, 1, PUMP_FUN);
    node.set_mode(Mode::Down);
    assert!(ws.read().is_err(), "the open connection is gone");
    assert!(ws_connect(&node).is_err());
    assert!(HttpClient::of(&node).post("{}").is_err());
    assert_eq!(node.connections_reset_while_down(), 2);
    let tx = TxBuilder::new(60).trade(trade(358)).build();
    node.publish(tx.clone());
    node.set_mode(Mode::Normal);
    let found = HttpClient::of(&node).result("getSignaturesForAddress", json!([PUMP_FUN]));
    assert_eq!(found[0]["signature"], json!(tx.signature), "what happened while down is in the ledger");
    let mut again = ws_connect(&node).unwrap();
    let _ = subscribe(&mut again, 1, PUMP_FUN);
}
