"""The frame rules of one socket (server.checkin.core.FrameCore): bytes and the time in, actions
out; no socket, no clock, no sleep."""

from __future__ import annotations

import json

from protocol.messages import MAX_FRAME_BYTES, Error, Hello, Scan
from server.checkin.config import HubConfig
from server.checkin.core import CLOSE_POLICY, CLOSE_TOO_LARGE, Close, Dispatch, FrameCore, Reply
from server.checkin.ratelimit import RateLimiter

CONFIG = HubConfig(rate=10.0, burst=2.0, close_after=3.0, rate_warning_interval=1.0)


def core(config: HubConfig = CONFIG) -> FrameCore:
    limiter = RateLimiter(config.rate, config.burst, config.close_after)
    return FrameCore("D1", limiter, config)


def frame(**fields) -> str:
    return json.dumps(fields)


def errors(actions) -> list[str]:
    return [a.frame.code for a in actions if isinstance(a, Reply) and isinstance(a.frame, Error)]


def test_a_well_formed_frame_is_dispatched_as_decoded():
    [action] = core().receive(frame(type="hello", cursor=4), now=0.0)
    assert action == Dispatch(Hello(cursor=4))
    scan = frame(type="scan", scan_id="s1", code="K7QH-M2PX", list_id="L1")
    [action] = core().receive(scan, now=0.0)
    assert isinstance(action, Dispatch) and isinstance(action.frame, Scan)


def test_a_malformed_frame_gets_an_error_and_is_never_dispatched():
    assert errors(core().receive("{not json", now=0.0)) == ["malformed"]
    assert errors(core().receive(frame(type="dance"), now=0.0)) == ["unknown_type"]


def test_an_auth_frame_after_authentication_is_refused():
    actions = core().receive(frame(type="auth", token="tsd_x"), now=0.0)
    assert [a.frame.detail for a in actions] == ["already authenticated"]


def test_a_frame_over_the_size_limit_is_refused_and_closed_with_1009():
    actions = core().receive("x" * (MAX_FRAME_BYTES + 1), now=0.0)
    assert errors(actions) == ["too_large"]
    assert actions[-1] == Close(CLOSE_TOO_LARGE, "frame too large")


def test_frames_over_the_rate_are_dropped_with_one_warning_a_second():
    c, hello = core(), frame(type="hello", cursor=None)
    assert all(isinstance(a, Dispatch) for t in (0.0, 0.0) for a in c.receive(hello, t))
    assert errors(c.receive(hello, 0.0)) == ["rate_limited"]  # the burst is spent
    assert c.receive(hello, 0.01) == []  # dropped, no second warning within the interval
    assert errors(c.receive(hello, 0.02)) == []  # still dropped quietly
    assert isinstance(c.receive(hello, 1.05)[0], Dispatch)  # the bucket refilled


def test_staying_over_the_rate_closes_with_1008_after_a_last_error():
    c, hello = core(), frame(type="hello", cursor=None)
    seen: list = []
    for step in range(400):  # 100 frames a second for 4 s, ten times the rate
        seen += c.receive(hello, step * 0.01)
        if any(isinstance(a, Close) for a in seen):
            break
    assert seen[-1] == Close(CLOSE_POLICY, "rate limit exceeded")
    assert seen[-2] == Reply(Error(code="rate_limited", detail="rate limit exceeded: closing"))
