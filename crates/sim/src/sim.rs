//! `Sim`: the handle test scripts hold. It owns the world and the executor, provides virtual
//! time (`sleep`, `now`), task spawning, and the main loop.

use std::cell::{Ref, RefCell, RefMut};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::census::LeaderCrashCensus;
use crate::exec::{completion_flag, Executor, JoinHandle};
use crate::network::MS;
use crate::world::World;

#[derive(Clone, Debug)]
pub struct Sim {
    world: Rc<RefCell<World>>,
    exec: Rc<Executor>,
    seed: u64,
}

/// What one run did, for the lab's statistics line and the determinism check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    pub virtual_ms: u64,
    pub events: u64,
    pub trace_hash: u64,
    /// The scenarios the run created (see `census`).
    pub census: LeaderCrashCensus,
}

impl Sim {
    pub fn new(world: World, seed: u64) -> Sim {
        Sim { world: Rc::new(RefCell::new(world)), exec: Rc::new(Executor::default()), seed }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Borrow the world; never hold it across an `.await`.
    pub fn world(&self) -> Ref<'_, World> {
        self.world.borrow()
    }

    pub fn world_mut(&self) -> RefMut<'_, World> {
        self.world.borrow_mut()
    }

    pub fn now_ms(&self) -> u64 {
        self.world.borrow().now_us / MS
    }

    pub fn now_us(&self) -> u64 {
        self.world.borrow().now_us
    }

    /// Waits `ms` milliseconds of virtual time.
    pub fn sleep(&self, ms: u64) -> Sleep {
        Sleep { sim: self.clone(), deadline_us: self.now_us() + ms * MS, registered: false }
    }

    pub fn spawn<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> JoinHandle<T> {
        self.exec.spawn(fut)
    }

    /// Runs `main` to completion, processing events in virtual time. Panics if the virtual
    /// clock passes `limit_ms` or if nothing is left to happen while `main` still waits.
    pub fn block_on(&self, main: impl Future<Output = ()> + 'static, limit_ms: u64) -> RunSummary {
        let done = completion_flag();
        let flag = done.clone();
        let _handle = self.exec.spawn(async move {
            main.await;
            flag.set(true);
        });
        loop {
            self.exec.run_until_stalled();
            if done.get() {
                break;
            }
            self.world.borrow_mut().flush_proposals();
            let stepped = self.world.borrow_mut().step();
            match stepped {
                None => panic!("simulation stalled: the test waits but no event is pending"),
                Some(Some(waker)) => waker.wake(),
                Some(None) => {}
            }
            let now_ms = self.now_ms();
            assert!(
                now_ms <= limit_ms,
                "test ran longer than {} s of virtual time",
                limit_ms / 1000
            );
        }
        let w = self.world.borrow();
        RunSummary {
            virtual_ms: w.now_us / MS,
            events: w.events_processed,
            trace_hash: w.trace.hash(),
            census: w.census.counts,
        }
    }
}

impl Sim {
    /// A client call from client endpoint `client` to `server`: resolves to the server's
    /// reply, or `None` if the call failed (labrpc semantics, see `clients`).
    pub fn client_call(
        &self,
        client: usize,
        server: usize,
        req: kvraft_kv::ClientRequest,
    ) -> ClientCall {
        let call = self.world.borrow_mut().start_client_call(client, server, req);
        ClientCall { sim: self.clone(), call }
    }
}

impl Sim {
    /// An administration request from the operator to `server`: resolves to the server's
    /// answer, or `None` if the call failed or `timeout_ms` passed first (see `world::admin`).
    pub fn admin_call(
        &self,
        server: usize,
        request: kvraft_replica::AdminRequest,
        timeout_ms: u64,
    ) -> AdminCall {
        let call = self.world.borrow_mut().start_admin_call(server, request, timeout_ms);
        AdminCall { sim: self.clone(), call }
    }
}

#[derive(Debug)]
pub struct AdminCall {
    sim: Sim,
    call: u64,
}

impl Future for AdminCall {
    type Output = Option<kvraft_replica::AdminReply>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.sim.world.borrow_mut().poll_admin_call(self.call, cx.waker()) {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }
}

#[derive(Debug)]
pub struct ClientCall {
    sim: Sim,
    call: u64,
}

impl Future for ClientCall {
    type Output = Option<kvraft_kv::Reply>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.sim.world.borrow_mut().poll_client_call(self.call, cx.waker()) {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }
}

#[derive(Debug)]
pub struct Sleep {
    sim: Sim,
    deadline_us: u64,
    registered: bool,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.sim.now_us() >= self.deadline_us {
            return Poll::Ready(());
        }
        if !self.registered {
            self.registered = true;
            let deadline = self.deadline_us;
            self.sim.world.borrow_mut().schedule_wake(deadline, cx.waker().clone());
        }
        Poll::Pending
    }
}
