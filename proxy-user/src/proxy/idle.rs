//! A stream that fails with `TimedOut` once nothing has moved either way for a while, so an
//! idle connection does not hold its descriptors and task for ever; and that can run a hook
//! once it has been quiet for a shorter while (a sandbox connection parks its upstream
//! connection that way, see [`super::pool`]).

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
    quiet: Option<Quiet>,
}

/// What runs when nothing has moved for `after`: the hook says whether it is settled (until
/// something moves again) or should be tried again `after` later.
struct Quiet {
    after: Duration,
    /// When to run the hook next (`None`: settled until something moves).
    due: Option<Instant>,
    hook: QuietHook,
}

/// A hook run on a quiet stream: `true` once there is nothing more for it to do.
pub type QuietHook = Box<dyn FnMut() -> bool + Send>;

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
            quiet: None,
        }
    }

    /// Runs `hook` whenever nothing has moved for `after` (shorter than the timeout), until it
    /// says it is settled; then again after the next quiet spell.
    pub fn when_quiet(mut self, after: Duration, hook: QuietHook) -> Self {
        let due = self.last + after;
        self.timer.as_mut().reset(due.min(self.last + self.timeout));
        self.quiet = Some(Quiet {
            after,
            due: Some(due),
            hook,
        });
        self
    }

    /// A flag that turns true when the timeout ends the stream (whoever reads it may take
    /// the failure for an ordinary close).
    pub fn fired(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.fired)
    }

    /// Notes that something moved: the quiet hook is due again after its quiet spell (the
    /// timer is brought forward only when it was set for later, once a spell).
    fn moved(&mut self) {
        self.last = Instant::now();
        if let Some(quiet) = &mut self.quiet {
            let due = self.last + quiet.after;
            quiet.due = Some(due);
            if due < self.timer.deadline() {
                self.timer.as_mut().reset(due);
            }
        }
    }

    /// Called when an operation is pending: runs the quiet hook when it is due, fails once the
    /// deadline passed with no activity, re-arming the timer (which is only moved when it
    /// fires, not on every byte).
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            let now = Instant::now();
            let deadline = self.last + self.timeout;
            if now >= deadline {
                self.fired.store(true, Ordering::Relaxed);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing moved for {:?}", self.timeout),
                ));
            }
            let mut next = deadline;
            if let Some(quiet) = &mut self.quiet {
                if quiet.due.is_some_and(|due| now >= due) {
                    quiet.due = (!(quiet.hook)()).then(|| now + quiet.after);
                }
                if let Some(due) = quiet.due {
                    next = next.min(due);
                }
            }
            self.timer.as_mut().reset(next);
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
                    self.moved();
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
                    this.moved();
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

    /// A stream whose quiet hook records when it ran and answers from `answers` (settled or
    /// not), then says settled.
    fn quiet_stream(
        near: tokio::io::DuplexStream,
        answers: Vec<bool>,
    ) -> (
        Idle<tokio::io::DuplexStream>,
        Arc<std::sync::Mutex<Vec<Duration>>>,
    ) {
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        let started = Instant::now();
        let (log, mut answers) = (Arc::clone(&ran), answers.into_iter());
        let hook = Box::new(move || {
            log.lock().unwrap().push(started.elapsed());
            answers.next().unwrap_or(true)
        });
        let idle =
            Idle::new(near, Duration::from_secs(10)).when_quiet(Duration::from_secs(1), hook);
        (idle, ran)
    }

    #[tokio::test(start_paused = true)]
    async fn the_quiet_hook_runs_once_per_quiet_spell() {
        let (near, mut far) = duplex(64);
        let (mut idle, ran) = quiet_stream(near, vec![true]);
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            far.write_all(b"x").await.unwrap();
            far
        });
        assert_eq!(idle.read(&mut [0; 8]).await.unwrap(), 1);
        assert_eq!(*ran.lock().unwrap(), [Duration::from_secs(1)]);
        let _far = writer.await.unwrap();
        assert!(
            idle.read(&mut [0; 8]).await.is_err(),
            "the timeout still ends it"
        );
        let ran = ran.lock().unwrap().clone();
        assert_eq!(ran, [Duration::from_secs(1), Duration::from_millis(3500)]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unsettled_quiet_hook_is_tried_again() {
        let (near, _far) = duplex(64);
        let (mut idle, ran) = quiet_stream(near, vec![false, false, true]);
        assert!(idle.read(&mut [0; 8]).await.is_err());
        let secs = |s| Duration::from_secs(s);
        assert_eq!(*ran.lock().unwrap(), [secs(1), secs(2), secs(3)]);
    }
}
