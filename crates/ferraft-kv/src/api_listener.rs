//! The HTTP API's listener: at most a set number of client connections at
//! once (see [`open_files`](crate::open_files) for why). At the cap it
//! stops accepting: new clients wait in the kernel's backlog until a
//! connection closes, while the node's own descriptors (Raft, WAL) stay
//! free.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How often reaching the cap is logged while it lasts.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A TCP listener that holds one permit per open connection.
#[derive(Debug)]
pub struct ApiListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    max: usize,
    warned_at: Option<Instant>,
}

impl ApiListener {
    /// Serves at most `max` connections of `inner` at once.
    pub fn new(inner: TcpListener, max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self { inner, permits: Arc::new(Semaphore::new(max)), max, warned_at: None }
    }

    async fn permit(&mut self) -> OwnedSemaphorePermit {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return permit;
        }
        if self.warned_at.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            self.warned_at = Some(Instant::now());
            tracing::warn!(
                max = self.max,
                "API connection limit reached: new clients wait until one closes (--max-api-connections)"
            );
        }
        // never closed: the listener owns the semaphore
        self.permits.clone().acquire_owned().await.expect("the semaphore is never closed")
    }
}

impl axum::serve::Listener for ApiListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = self.permit().await;
        // retries (and logs) accept errors by itself
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        // Without TCP_NODELAY a response written in two parts can wait for
        // the client's delayed ACK.
        let _ = stream.set_nodelay(true);
        (CappedStream { stream, _permit: permit }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted connection; closing it frees its place.
#[derive(Debug)]
pub struct CappedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for CappedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;

    #[tokio::test]
    async fn at_the_cap_a_new_connection_waits_until_one_closes() {
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        let mut listener = ApiListener::new(inner, 2);
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let _c3 = TcpStream::connect(addr).await.unwrap();
        let (first, _) = listener.accept().await;
        let (_second, _) = listener.accept().await;
        let third = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(third.is_err(), "the third waits while two are open");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
        assert!(third.is_ok(), "a closed connection frees its place");
    }
}
