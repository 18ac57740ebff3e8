//! Writing a [`RawAnswer`] to the socket: repeated pieces without a large buffer,
//! endless chunks at a bounded rate, one byte at a time when paced.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use super::{Piece, RawAnswer, ENDLESS_TICK};

/// A repeated piece goes out in blocks of about this size.
const BLOCK: usize = 16 * 1024;
/// After the answer, how long to read (and drop) what the client still sends, so that
/// closing with unread data does not reset the connection under the answer.
const LINGER: Duration = Duration::from_millis(500);

/// Writes `answer` and closes; returns when the peer goes away or the answer is done.
pub(crate) async fn send<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, answer: RawAnswer) {
    match write_answer(&mut io, &answer).await {
        Ok(()) => linger(&mut io).await,
        // Expected for endless answers: the client hung up.
        Err(e) => debug!(error = %e, "hostile answer ended"),
    }
}

async fn write_answer<S: AsyncWrite + Unpin>(io: &mut S, answer: &RawAnswer) -> io::Result<()> {
    for piece in &answer.pieces {
        match piece {
            Piece::Once(bytes) => write(io, bytes, answer.pace).await?,
            Piece::Repeat(bytes, times) => {
                let per_block = (BLOCK / bytes.len().max(1)).max(1) as u64;
                let block = Bytes::from(bytes.repeat(per_block.min(*times) as usize));
                let mut left = *times;
                while left >= per_block {
                    write(io, &block, answer.pace).await?;
                    left -= per_block;
                }
                let rest = bytes.repeat(left as usize);
                write(io, &rest, answer.pace).await?;
            }
        }
    }
    if let Some(chunk) = &answer.endless {
        loop {
            write(io, chunk, answer.pace).await?;
            tokio::time::sleep(ENDLESS_TICK).await;
        }
    }
    io.shutdown().await
}

async fn write<S: AsyncWrite + Unpin>(
    io: &mut S,
    bytes: &[u8],
    pace: Option<Duration>,
) -> io::Result<()> {
    let Some(pace) = pace else {
        io.write_all(bytes).await?;
        return io.flush().await;
    };
    for byte in bytes {
        io.write_all(std::slice::from_ref(byte)).await?;
        io.flush().await?;
        tokio::time::sleep(pace).await;
    }
    Ok(())
}

async fn linger<S: AsyncRead + Unpin>(io: &mut S) {
    let mut sink = [0u8; 4096];
    let drain = async { while matches!(io.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn repeated_pieces_are_written_exactly() {
        let answer = RawAnswer {
            pieces: vec![
                Piece::Once(Bytes::from_static(b"<")),
                Piece::Repeat(Bytes::from_static(b"ab"), 20_000),
                Piece::Repeat(Bytes::from_static(b"["), 3),
                Piece::Repeat(Bytes::from_static(b"z"), 0),
            ],
            endless: None,
            pace: None,
        };
        let (mut client, server) = tokio::io::duplex(1024);
        let writer = tokio::spawn(send(server, answer));
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        drop(client);
        writer.await.unwrap();
        let mut want = b"<".to_vec();
        want.extend("ab".repeat(20_000).bytes());
        want.extend_from_slice(b"[[[");
        assert_eq!(got, want);
    }
}
