"""The relay's policy without sockets: close order, drain on stop, heartbeat,
idle timeout and flush deadlines, driven by events and a fake clock."""

import pytest

import wsproxy
from wsproxy import (CLOSE_TIMEOUT, STOP_DRAIN_TIMEOUT, TARGET_FLUSH_TIMEOUT, DropClient, RelayPhase,
                     RelayPolicy, SendClose, SendPing, ShutdownTarget)

pytestmark = pytest.mark.pure

IN, OUT = wsproxy._POLL_IN, wsproxy._POLL_OUT
T0 = 1000.0


def turn(policy, client_pending=False, target_pending=False):
    """One turn of the loop: (client mask, target mask, wait, actions)."""
    return policy.update(client_pending, target_pending)


def test_relaying_reads_both_sides_and_sleeps_until_something_happens():
    policy = RelayPolicy(T0)
    assert turn(policy) == (IN, IN, None, ())
    assert policy.phase is RelayPhase.RELAYING


def test_a_backed_up_side_stops_reads_from_the_other():
    policy = RelayPolicy(T0)
    cmask, tmask, _, _ = turn(policy, target_pending=True)
    assert cmask == 0 and tmask == IN | OUT         # client not read while the target is behind
    cmask, tmask, _, _ = turn(policy, client_pending=True)
    assert cmask == IN | OUT and tmask == 0          # target not read while the client is behind


def test_target_eof_closes_1000_and_waits_for_the_reply_then_half_closes_the_target():
    policy = RelayPolicy(T0)
    assert policy.target_ended() == (SendClose(1000, "target closed the connection"),)
    assert policy.phase is RelayPhase.CLOSING
    cmask, tmask, wait, actions = turn(policy)
    assert cmask == IN and tmask == 0 and wait == pytest.approx(CLOSE_TIMEOUT) and actions == ()
    # The client still sends data (delivered), then its Close reply.
    policy.client_closed(1000, "")
    cmask, tmask, wait, actions = turn(policy)
    assert actions == (ShutdownTarget(),)
    assert policy.phase is RelayPhase.DONE
    assert (policy.close_code, policy.close_reason) == (1000, "target closed the connection")


def test_target_error_closes_1011_with_the_reason():
    policy = RelayPolicy(T0)
    assert policy.target_ended("Connection reset by peer") == (
        SendClose(1011, "target connection lost: Connection reset by peer"),)


def test_a_close_that_is_never_answered_times_out():
    policy = RelayPolicy(T0)
    policy.target_ended()
    policy.now = T0 + CLOSE_TIMEOUT - 0.01
    turn(policy)
    assert policy.phase is RelayPhase.CLOSING
    policy.now = T0 + CLOSE_TIMEOUT + 0.01
    turn(policy)
    assert policy.phase is RelayPhase.DONE


def test_our_close_waits_for_our_queued_bytes_to_reach_the_client():
    policy = RelayPolicy(T0)
    policy.target_ended()
    policy.client_closed(1000, "")
    cmask, _, _, _ = turn(policy, client_pending=True)
    assert policy.phase is RelayPhase.CLOSING and cmask & OUT
    turn(policy)
    assert policy.phase is RelayPhase.DONE


def test_client_close_delivers_what_it_sent_before_the_target_is_half_closed():
    policy = RelayPolicy(T0)
    policy.client_closed(1001, "bye")
    assert policy.close_sent and policy.phase is RelayPhase.CLOSING
    cmask, tmask, _, actions = turn(policy, target_pending=True)
    assert actions == () and tmask == OUT         # still flushing, not reading
    assert policy.phase is RelayPhase.FLUSHING
    _, _, wait, _ = turn(policy, target_pending=True)
    assert wait == pytest.approx(TARGET_FLUSH_TIMEOUT)
    _, _, _, actions = turn(policy, target_pending=False)
    assert actions == (ShutdownTarget(),) and policy.phase is RelayPhase.DONE
    assert (policy.close_code, policy.close_reason) == (1001, "client closed: bye")


def test_a_target_that_stops_reading_gets_the_flush_timeout_and_no_more():
    policy = RelayPolicy(T0)
    policy.client_lost("client closed without a close frame")
    turn(policy, target_pending=True)
    assert policy.phase is RelayPhase.FLUSHING
    policy.now = T0 + TARGET_FLUSH_TIMEOUT - 0.01
    turn(policy, target_pending=True)
    assert policy.phase is RelayPhase.FLUSHING
    policy.now = T0 + TARGET_FLUSH_TIMEOUT + 0.01
    turn(policy, target_pending=True)
    assert policy.phase is RelayPhase.DONE


def test_a_lost_client_sends_no_close_and_its_upload_still_goes_out():
    policy = RelayPolicy(T0)
    policy.client_lost("client error: Broken pipe")
    assert policy.target_ended() == ()               # nobody to tell
    cmask, tmask, _, actions = turn(policy, target_pending=True)
    assert cmask == 0 and tmask == OUT and actions == ()
    assert turn(policy)[3] == (ShutdownTarget(),)
    assert policy.close_reason == "client error: Broken pipe"   # the first reason is kept


def test_protocol_error_closes_at_once_without_waiting_for_the_reply():
    policy = RelayPolicy(T0)
    assert policy.client_broke_protocol(1002, "reserved bits set") == (SendClose(1002, "reserved bits set"),)
    assert policy.close_reason == "client protocol error: reserved bits set"
    turn(policy, client_pending=True)
    assert policy.phase is RelayPhase.CLOSING        # our Close is still on its way
    turn(policy)
    assert policy.phase is RelayPhase.DONE


def test_close_is_sent_once():
    policy = RelayPolicy(T0)
    assert policy.close(1001, "idle timeout")
    assert policy.close(1000, "again") == ()
    assert policy.target_ended() == ()
    assert (policy.close_code, policy.close_reason) == (1001, "idle timeout")


def test_stop_relays_what_the_target_already_sent_then_closes_1001():
    policy = RelayPolicy(T0)
    assert policy.stop(5000) == ()
    assert policy.phase is RelayPhase.DRAINING
    _, tmask, wait, _ = turn(policy)
    assert tmask == IN and wait == pytest.approx(STOP_DRAIN_TIMEOUT)
    assert policy.drained(3000) == ()
    assert policy.drained(2000) == (SendClose(1001, "server shutting down"),)


def test_stop_drain_gives_up_at_its_deadline():
    policy = RelayPolicy(T0)
    policy.stop(5000)
    assert policy.tick(T0 + STOP_DRAIN_TIMEOUT - 0.01) == ()
    assert policy.tick(T0 + STOP_DRAIN_TIMEOUT) == (SendClose(1001, "server shutting down"),)


def test_stop_with_nothing_owed_closes_at_once():
    assert RelayPolicy(T0).stop(0) == (SendClose(1001, "server shutting down"),)


def test_heartbeat_pings_and_a_missing_pong_drops_the_client():
    policy = RelayPolicy(T0, heartbeat=5)
    assert turn(policy)[2] == pytest.approx(5)
    assert policy.tick(T0 + 4.9) == ()
    assert policy.tick(T0 + 5) == (SendPing(b"wsproxy"),)
    assert policy.tick(T0 + 9.9) == ()
    assert policy.tick(T0 + 10) == (DropClient("no pong within 5s"),)
    assert policy.phase is RelayPhase.FLUSHING and not policy.client_open


def test_an_answered_ping_keeps_the_client():
    policy = RelayPolicy(T0, heartbeat=5)
    for n in range(1, 6):
        assert policy.tick(T0 + 5 * n) == (SendPing(b"wsproxy"),)
        policy.pong()
    assert policy.client_open


def test_idle_timeout_counts_from_the_last_read():
    policy = RelayPolicy(T0, idle_timeout=30)
    policy.last_activity = T0 + 20
    assert policy.tick(T0 + 49) == ()
    assert turn(policy)[2] == pytest.approx(1)
    assert policy.tick(T0 + 50) == (SendClose(1001, "idle timeout"),)


def test_timers_sleep_while_closing():
    """A heartbeat due during the close handshake must not wake the loop."""
    policy = RelayPolicy(T0, heartbeat=0.2)
    policy.target_ended()
    assert policy.tick(T0 + 1) == ()
    assert turn(policy)[2] == pytest.approx(CLOSE_TIMEOUT - 1)


def test_illegal_transitions_are_refused():
    policy = RelayPolicy(T0)
    policy.client_lost("gone")
    turn(policy)
    assert policy.phase is RelayPhase.DONE
    with pytest.raises(RuntimeError):
        policy._enter(RelayPhase.RELAYING)


def test_every_phase_can_reach_done():
    for phase in RelayPhase:
        seen, frontier = {phase}, [phase]
        while frontier:
            for nxt in wsproxy.RELAY_TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert RelayPhase.DONE in seen, phase


def test_wake_at_is_the_next_deadline_so_the_loop_ticks_only_when_due():
    policy = RelayPolicy(T0, heartbeat=5, idle_timeout=7)
    turn(policy)
    assert policy.wake_at == T0 + 5                    # the first ping
    policy.tick(T0 + 5)
    policy.last_activity = T0 + 5
    turn(policy)
    assert policy.wake_at == T0 + 10                   # next ping and the pong deadline
    policy.pong()
    policy.last_activity = T0 + 1                      # (as if no read since)
    turn(policy)
    assert policy.wake_at == T0 + 8                    # now the idle timeout comes first
    untimed = RelayPolicy(T0)
    turn(untimed)
    assert untimed.wake_at is None
    untimed.stop(10)
    turn(untimed)
    assert untimed.wake_at == T0 + STOP_DRAIN_TIMEOUT
