//! The option negotiation automaton (RFC 1661 section 4).
//!
//! [`transition`] is the state transition table of section 4.1, verbatim:
//! it maps (state, event) to the actions and the next state, or `None` for
//! the cells marked "-" (illegal transitions, ignored by the caller).
//! [`Automaton`] adds what the table leaves implicit: the restart counter
//! (section 4.6), the restart timer that runs in the states Closing,
//! Stopping, Req-Sent, Ack-Rcvd and Ack-Sent, and the mapping of a timer
//! expiry to TO+ or TO-. The protocol (LCP, IPCP) performs the send
//! actions and reacts to the layer actions.
//!
//! Footnotes of the table: "r" (restart option) and "p" (passive option)
//! are not implemented, so Open in Stopped/Closing/Stopping/Opened stays
//! put and TO- in Req-Sent/Ack-Rcvd/Ack-Sent goes to Stopped; "x" (crossed
//! connection) needs nothing beyond the listed actions.

/// Automaton states (RFC 1661 section 4.2), numbered as in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// 0: lower layer down, no Open.
    Initial,
    /// 1: Open received, lower layer still down.
    Starting,
    /// 2: lower layer up, no Open.
    Closed,
    /// 3: waiting for Down after This-Layer-Finished, or for a peer's Configure-Request.
    Stopped,
    /// 4: Terminate-Request sent after Close.
    Closing,
    /// 5: Terminate-Request sent (or received) without Close.
    Stopping,
    /// 6: Configure-Request sent, no Configure-Ack in either direction.
    ReqSent,
    /// 7: Configure-Ack received, none sent.
    AckRcvd,
    /// 8: Configure-Ack sent, none received.
    AckSent,
    /// 9: both Configure-Acks exchanged.
    Opened,
}

impl State {
    /// All states, in table order.
    pub const ALL: [State; 10] = [
        State::Initial,
        State::Starting,
        State::Closed,
        State::Stopped,
        State::Closing,
        State::Stopping,
        State::ReqSent,
        State::AckRcvd,
        State::AckSent,
        State::Opened,
    ];

    /// Whether the restart timer runs in this state (RFC 1661 section 4.2).
    pub fn timer_runs(self) -> bool {
        matches!(
            self,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        )
    }
}

/// Automaton events (RFC 1661 section 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Lower layer is Up.
    Up,
    /// Lower layer is Down.
    Down,
    /// Administrative Open.
    Open,
    /// Administrative Close.
    Close,
    /// TO+: timeout with the restart counter above zero.
    TimeoutRetry,
    /// TO-: timeout with the restart counter expired.
    TimeoutGiveUp,
    /// RCR+: Receive-Configure-Request, acceptable.
    RcrGood,
    /// RCR-: Receive-Configure-Request, to be Nak'ed or Rejected.
    RcrBad,
    /// RCA: Receive-Configure-Ack.
    Rca,
    /// RCN: Receive-Configure-Nak or Configure-Reject.
    Rcn,
    /// RTR: Receive-Terminate-Request.
    Rtr,
    /// RTA: Receive-Terminate-Ack.
    Rta,
    /// RUC: Receive-Unknown-Code.
    Ruc,
    /// RXJ+: Receive-Code-Reject or Protocol-Reject, permitted.
    RxjGood,
    /// RXJ-: Receive-Code-Reject or Protocol-Reject, catastrophic.
    RxjBad,
    /// RXR: Receive-Echo-Request, Echo-Reply or Discard-Request.
    Rxr,
}

impl Event {
    /// All events, in table order.
    pub const ALL: [Event; 16] = [
        Event::Up,
        Event::Down,
        Event::Open,
        Event::Close,
        Event::TimeoutRetry,
        Event::TimeoutGiveUp,
        Event::RcrGood,
        Event::RcrBad,
        Event::Rca,
        Event::Rcn,
        Event::Rtr,
        Event::Rta,
        Event::Ruc,
        Event::RxjGood,
        Event::RxjBad,
        Event::Rxr,
    ];
}

/// Automaton actions (RFC 1661 section 4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// tlu: This-Layer-Up.
    Tlu,
    /// tld: This-Layer-Down.
    Tld,
    /// tls: This-Layer-Started.
    Tls,
    /// tlf: This-Layer-Finished.
    Tlf,
    /// irc before a Configure-Request: restart counter = Max-Configure.
    IrcConfigure,
    /// irc before a Terminate-Request: restart counter = Max-Terminate.
    IrcTerminate,
    /// zrc: restart counter = 0 (and the timer started).
    Zrc,
    /// scr: Send-Configure-Request.
    Scr,
    /// sca: Send-Configure-Ack.
    Sca,
    /// scn: Send-Configure-Nak or Configure-Reject.
    Scn,
    /// str: Send-Terminate-Request.
    Str,
    /// sta: Send-Terminate-Ack.
    Sta,
    /// scj: Send-Code-Reject.
    Scj,
    /// ser: Send-Echo-Reply.
    Ser,
}

/// The RFC 1661 section 4.1 state transition table. `None` is "-".
pub fn transition(state: State, event: Event) -> Option<(&'static [Action], State)> {
    use Action::*;
    use Event as E;
    use State as S;
    let r: (&'static [Action], State) = match (event, state) {
        (E::Up, S::Initial) => (&[], S::Closed),
        (E::Up, S::Starting) => (&[IrcConfigure, Scr], S::ReqSent),
        (E::Up, _) => return None,

        (E::Down, S::Initial | S::Starting) => return None,
        (E::Down, S::Closed) => (&[], S::Initial),
        (E::Down, S::Stopped) => (&[Tls], S::Starting),
        (E::Down, S::Closing) => (&[], S::Initial),
        (E::Down, S::Stopping | S::ReqSent | S::AckRcvd | S::AckSent) => (&[], S::Starting),
        (E::Down, S::Opened) => (&[Tld], S::Starting),

        (E::Open, S::Initial) => (&[Tls], S::Starting),
        (E::Open, S::Starting) => (&[], S::Starting),
        (E::Open, S::Closed) => (&[IrcConfigure, Scr], S::ReqSent),
        (E::Open, S::Stopped) => (&[], S::Stopped),
        (E::Open, S::Closing | S::Stopping) => (&[], S::Stopping),
        (E::Open, s) => (&[], s),

        (E::Close, S::Initial) => (&[], S::Initial),
        (E::Close, S::Starting) => (&[Tlf], S::Initial),
        (E::Close, S::Closed | S::Stopped) => (&[], S::Closed),
        (E::Close, S::Closing | S::Stopping) => (&[], S::Closing),
        (E::Close, S::ReqSent | S::AckRcvd | S::AckSent) => (&[IrcTerminate, Str], S::Closing),
        (E::Close, S::Opened) => (&[Tld, IrcTerminate, Str], S::Closing),

        (E::TimeoutRetry, S::Closing) => (&[Str], S::Closing),
        (E::TimeoutRetry, S::Stopping) => (&[Str], S::Stopping),
        (E::TimeoutRetry, S::ReqSent | S::AckRcvd) => (&[Scr], S::ReqSent),
        (E::TimeoutRetry, S::AckSent) => (&[Scr], S::AckSent),
        (E::TimeoutRetry, _) => return None,

        (E::TimeoutGiveUp, S::Closing) => (&[Tlf], S::Closed),
        (E::TimeoutGiveUp, S::Stopping | S::ReqSent | S::AckRcvd | S::AckSent) => {
            (&[Tlf], S::Stopped)
        }
        (E::TimeoutGiveUp, _) => return None,

        (E::RcrGood | E::RcrBad | E::Rca | E::Rcn | E::Rtr, S::Closed) => (&[Sta], S::Closed),
        (E::RcrGood, S::Stopped) => (&[IrcConfigure, Scr, Sca], S::AckSent),
        (E::RcrBad, S::Stopped) => (&[IrcConfigure, Scr, Scn], S::ReqSent),
        (E::Rca | E::Rcn | E::Rtr, S::Stopped) => (&[Sta], S::Stopped),
        (E::RcrGood | E::RcrBad | E::Rca | E::Rcn, S::Closing | S::Stopping) => (&[], state),

        (E::RcrGood, S::ReqSent | S::AckSent) => (&[Sca], S::AckSent),
        (E::RcrGood, S::AckRcvd) => (&[Sca, Tlu], S::Opened),
        (E::RcrGood, S::Opened) => (&[Tld, Scr, Sca], S::AckSent),
        (E::RcrBad, S::ReqSent | S::AckSent) => (&[Scn], S::ReqSent),
        (E::RcrBad, S::AckRcvd) => (&[Scn], S::AckRcvd),
        (E::RcrBad, S::Opened) => (&[Tld, Scr, Scn], S::ReqSent),

        (E::Rca, S::ReqSent) => (&[IrcConfigure], S::AckRcvd),
        (E::Rca, S::AckRcvd) => (&[Scr], S::ReqSent),
        (E::Rca, S::AckSent) => (&[IrcConfigure, Tlu], S::Opened),
        (E::Rca, S::Opened) => (&[Tld, Scr], S::ReqSent),

        (E::Rcn, S::ReqSent) => (&[IrcConfigure, Scr], S::ReqSent),
        (E::Rcn, S::AckRcvd) => (&[Scr], S::ReqSent),
        (E::Rcn, S::AckSent) => (&[IrcConfigure, Scr], S::AckSent),
        (E::Rcn, S::Opened) => (&[Tld, Scr], S::ReqSent),

        (E::Rtr, S::Closing | S::Stopping) => (&[Sta], state),
        (E::Rtr, S::ReqSent | S::AckRcvd | S::AckSent) => (&[Sta], S::ReqSent),
        (E::Rtr, S::Opened) => (&[Tld, Zrc, Sta], S::Stopping),

        (E::Rta, S::Closed | S::Stopped) => (&[], state),
        (E::Rta, S::Closing) => (&[Tlf], S::Closed),
        (E::Rta, S::Stopping) => (&[Tlf], S::Stopped),
        (E::Rta, S::ReqSent | S::AckRcvd) => (&[], S::ReqSent),
        (E::Rta, S::AckSent) => (&[], S::AckSent),
        (E::Rta, S::Opened) => (&[Tld, Scr], S::ReqSent),

        (E::Ruc, S::Initial | S::Starting) => return None,
        (E::Ruc, s) => (&[Scj], s),

        (E::RxjGood, S::Initial | S::Starting) => return None,
        (E::RxjGood, S::AckRcvd) => (&[], S::ReqSent),
        (E::RxjGood, s) => (&[], s),

        (E::RxjBad, S::Closed | S::Closing) => (&[Tlf], S::Closed),
        (E::RxjBad, S::Stopped | S::Stopping | S::ReqSent | S::AckRcvd | S::AckSent) => {
            (&[Tlf], S::Stopped)
        }
        (E::RxjBad, S::Opened) => (&[Tld, IrcTerminate, Str], S::Stopping),

        (E::Rxr, S::Opened) => (&[Ser], S::Opened),
        (E::Rxr, S::Initial | S::Starting) => return None,
        (E::Rxr, s) => (&[], s),

        (E::RcrGood | E::RcrBad | E::Rca | E::Rcn | E::Rtr | E::Rta | E::RxjBad, _) => return None,
    };
    Some(r)
}

/// One automaton instance: state, restart counter and restart timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Automaton {
    state: State,
    restart_counter: u32,
    deadline: Option<u64>,
    max_configure: u32,
    max_terminate: u32,
    restart_ms: u64,
}

impl Automaton {
    /// A new automaton in the Initial state.
    pub fn new(max_configure: u32, max_terminate: u32, restart_ms: u64) -> Self {
        Automaton {
            state: State::Initial,
            restart_counter: 0,
            deadline: None,
            max_configure,
            max_terminate,
            restart_ms,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Restart counter (RFC 1661 section 4.6).
    pub fn restart_counter(&self) -> u32 {
        self.restart_counter
    }

    /// When the restart timer expires, if it runs.
    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// Puts the automaton in `state` with a running timer where the state
    /// has one (tests drive every cell of the table from every state).
    pub fn force_state(&mut self, now_ms: u64, state: State, restart_counter: u32) {
        self.state = state;
        self.restart_counter = restart_counter;
        self.deadline = state.timer_runs().then_some(now_ms + self.restart_ms);
    }

    /// Applies `event`: moves to the next state, runs the counter and timer
    /// actions, and returns all actions for the protocol to perform (in
    /// table order), or `None` for an illegal transition (nothing changes).
    pub fn handle(&mut self, now_ms: u64, event: Event) -> Option<&'static [Action]> {
        let (actions, next) = transition(self.state, event)?;
        for a in actions {
            match a {
                Action::IrcConfigure => self.restart_counter = self.max_configure,
                Action::IrcTerminate => self.restart_counter = self.max_terminate,
                Action::Zrc => {
                    self.restart_counter = 0;
                    self.deadline = Some(now_ms + self.restart_ms);
                }
                // Each transmission uses one count and (re)starts the timer.
                Action::Scr | Action::Str => {
                    self.restart_counter = self.restart_counter.saturating_sub(1);
                    self.deadline = Some(now_ms + self.restart_ms);
                }
                _ => {}
            }
        }
        self.state = next;
        if !next.timer_runs() {
            self.deadline = None;
        } else if self.deadline.is_none() {
            self.deadline = Some(now_ms + self.restart_ms);
        }
        Some(actions)
    }

    /// The timeout event due at `now_ms`, if the timer has expired: TO+
    /// while the restart counter is above zero, TO- once it is exhausted.
    pub fn timeout_event(&self, now_ms: u64) -> Option<Event> {
        match self.deadline {
            Some(d) if now_ms >= d => Some(if self.restart_counter > 0 {
                Event::TimeoutRetry
            } else {
                Event::TimeoutGiveUp
            }),
            _ => None,
        }
    }
}
