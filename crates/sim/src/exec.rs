//! A single-threaded, deterministic async executor for test scripts.
//!
//! Lab tests are scripts with sleeps and concurrent "goroutines". Here they are async tasks on
//! this executor: `sleep` waits for virtual time, and tasks run in a fixed FIFO order, so a
//! seed fully determines the interleaving.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// The run queue is shared with wakers, which std requires to be `Send + Sync`; it is only
/// ever touched from the simulation thread.
type RunQueue = Arc<Mutex<VecDeque<usize>>>;

struct TaskWaker {
    id: usize,
    queue: RunQueue,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let mut q = self.queue.lock().expect("run queue lock");
        if !q.contains(&self.id) {
            q.push_back(self.id);
        }
    }
}

#[derive(Default)]
pub struct Executor {
    tasks: RefCell<Vec<Option<Task>>>,
    queue: RunQueue,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Executor({} tasks)", self.tasks.borrow().len())
    }
}

/// Resolves when the spawned task finishes.
#[derive(Debug)]
pub struct JoinHandle<T> {
    result: Rc<RefCell<Option<T>>>,
    waiter: Rc<RefCell<Option<Waker>>>,
}

impl<T> Future for JoinHandle<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.result.borrow_mut().take() {
            Some(v) => Poll::Ready(v),
            None => {
                *self.waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Executor {
    pub fn spawn<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> JoinHandle<T> {
        let result = Rc::new(RefCell::new(None));
        let waiter: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
        let (r, w) = (result.clone(), waiter.clone());
        let task: Task = Box::pin(async move {
            let v = fut.await;
            *r.borrow_mut() = Some(v);
            if let Some(waker) = w.borrow_mut().take() {
                waker.wake();
            }
        });
        let mut tasks = self.tasks.borrow_mut();
        tasks.push(Some(task));
        self.queue.lock().expect("run queue lock").push_back(tasks.len() - 1);
        JoinHandle { result, waiter }
    }

    /// Polls every runnable task until none is runnable.
    pub fn run_until_stalled(&self) {
        loop {
            let next = self.queue.lock().expect("run queue lock").pop_front();
            let Some(id) = next else { return };
            let Some(mut task) = self.tasks.borrow_mut()[id].take() else { continue };
            let waker = Waker::from(Arc::new(TaskWaker { id, queue: self.queue.clone() }));
            let mut cx = Context::from_waker(&waker);
            if task.as_mut().poll(&mut cx).is_pending() {
                self.tasks.borrow_mut()[id] = Some(task);
            }
        }
    }
}

/// A flag a future sets when it completes, for the main loop to watch.
pub fn completion_flag() -> Rc<Cell<bool>> {
    Rc::new(Cell::new(false))
}
