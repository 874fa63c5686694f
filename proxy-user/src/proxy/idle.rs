//! A stream that fails with `TimedOut` once nothing has moved either way for a while, so an
//! idle connection does not hold its descriptors and task for ever.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{sleep_until, Instant, Sleep},
};

/// `S`, ended after `timeout` without a byte read or written.
pub struct Idle<S> {
    inner: S,
    timeout: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
    fired: Arc<AtomicBool>,
}

impl<S> Idle<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, timeout: Duration) -> Self {
        let last = Instant::now();
        Self {
            inner,
            timeout,
            last,
            timer: Box::pin(sleep_until(last + timeout)),
            fired: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A flag that turns true when the timeout ends the stream (whoever reads it may take
    /// the failure for an ordinary close).
    pub fn fired(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.fired)
    }

    /// Called when an operation is pending: fails once the deadline passed with no activity,
    /// re-arming the timer (which is only moved when it fires, not on every byte).
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            let deadline = self.last + self.timeout;
            if Instant::now() >= deadline {
                self.fired.store(true, Ordering::Relaxed);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing moved for {:?}", self.timeout),
                ));
            }
            self.timer.as_mut().reset(deadline);
        }
    }

    /// Notes what a write came to: progress resets the clock, waiting checks it.
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.last = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.last = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match this.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, data);
        this.written(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.written(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stream_with_nothing_moving_times_out() {
        let (near, _far) = duplex(64);
        let mut idle = Idle::new(near, Duration::from_secs(5));
        let started = Instant::now();
        let err = idle.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn traffic_keeps_it_open() {
        let (near, mut far) = duplex(64);
        let mut idle = Idle::new(near, Duration::from_secs(5));
        let writer = tokio::spawn(async move {
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_secs(3)).await;
                far.write_all(b"x").await.unwrap();
            }
            far
        });
        for _ in 0..4 {
            assert_eq!(idle.read(&mut [0; 8]).await.unwrap(), 1);
        }
        let _far = writer.await.unwrap();
        let started = Instant::now();
        assert!(idle.read(&mut [0; 8]).await.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
