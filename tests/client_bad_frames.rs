//! Malformed frames sent *to* a client (the flood of tests/bad_input.rs
//! targets the scheduler and the data port): a fake scheduler completes
//! the handshake, then writes garbage and keeps the connection open. The
//! client must notice by itself — a pending result fails with a connection
//! error naming the problem, at once rather than at a timeout — and must
//! neither panic nor hang.

use rask::client::{Client, ClientConfig, ClientError};
use rask::protocol::{encode_batch, Limits, Message, WireMessage, PROTOCOL_VERSION};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A fake scheduler that answers every `hello` with `welcome`, then sends
/// `garbage` and reads until the client goes. Returns its address.
fn garbage_scheduler(rt: &tokio::runtime::Runtime, garbage: Vec<u8>) -> String {
    rt.block_on(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("tcp://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let garbage = garbage.clone();
                tokio::spawn(async move {
                    let Ok(Some(_hello)) = WireMessage::read_from(&mut s, &Limits::default()).await
                    else {
                        return;
                    };
                    let welcome = encode_batch(
                        &[Message::Welcome {
                            protocol: PROTOCOL_VERSION,
                            id: 7,
                            name: "garbage".into(),
                            dashboard: None,
                        }],
                        vec![],
                    );
                    if welcome.write_to(&mut s).await.is_err() {
                        return;
                    }
                    let _ = s.write_all(&garbage).await;
                    let mut sink = Vec::new();
                    let _ = s.read_to_end(&mut sink).await;
                });
            }
        });
        addr
    })
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = 1u32.to_le_bytes().to_vec();
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn a_client_closes_a_connection_that_sends_malformed_frames() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // (what, the bytes, what the error must say)
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a body that is not msgpack",
            frame(&[0xc1, 0xc1, 0xc1]),
            "not valid msgpack",
        ),
        (
            "a batch that is not an array",
            frame(&[0x2a]),
            "must be an array of messages",
        ),
        (
            "an absurd frame count",
            vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
            "frames is over the receiver's limit of 65536 frames",
        ),
        (
            "a frame over the size limit",
            {
                let mut v = 1u32.to_le_bytes().to_vec();
                v.extend_from_slice(&u64::MAX.to_le_bytes());
                v
            },
            "bytes is over the receiver's limit of",
        ),
        (
            "not frames at all",
            b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
            "over the receiver's limit",
        ),
    ];
    for (what, garbage, want) in cases {
        let addr = garbage_scheduler(&rt, garbage);
        let config = ClientConfig {
            // Far above the deadline below: a result that waited for it
            // would be a Timeout, not the connection error wanted.
            timeout: Duration::from_secs(300),
            ..ClientConfig::default()
        };
        let client = match Client::connect(&addr, config) {
            Ok(c) => c,
            // The garbage may arrive with the welcome: refusing at connect
            // is as good, if it says why.
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        ClientError::ConnectionClosed(_) | ClientError::Protocol(_)
                    ),
                    "{what}: {e:?}"
                );
                continue;
            }
        };
        let r = client
            .submit("inc", vec![1.into()])
            .and_then(|f| f.result(Some(Duration::from_secs(60))));
        match r {
            Err(ClientError::Timeout(_)) => panic!("{what}: the client did not notice"),
            Err(e) => {
                let m = e.to_string();
                assert!(
                    m.contains(" lost: ") && m.contains(want),
                    "{what}: {m} does not say {want:?}"
                );
            }
            Ok(v) => panic!("{what}: a result from a scheduler that sent garbage: {v:?}"),
        }
        let reason = client.closed_reason().unwrap_or_default();
        assert!(reason.contains(want), "{what}: closed_reason {reason:?}");
        drop(client);
    }
}
