"""The call object of docs/contract.md: what notifications and REST say of a call.

Why apart from the call: it is the public contract's shape (field names, units: times in
milliseconds since the epoch, codecs as rtpmap text), which changes with the contract, not
with how the call coordinates its legs.
"""

from __future__ import annotations

from typing import Any

from wcsgw.calls.callstats import call_stats

__all__ = ["call_object"]


def call_object(call: Any, with_sdp: bool = False) -> dict[str, Any]:
    """``call`` (wcsgw.calls.call.Call or a subclass) as docs/contract.md's call object; with
    ``with_sdp`` and once there is one, the SDP answer the browser gets (``sdp``)."""
    plan = call.plan
    out: dict[str, Any] = {
        "callId": call.call_id,
        "sessionId": call.session_id,
        "status": call.status.value,
        "sipStatus": call.sip_status,
        "info": call.info,
        "incoming": call.incoming,
        "caller": call.caller,
        "callee": call.callee,
        "visibleName": call.visible_name,
        "hasAudio": call.has_audio,
        "hasVideo": call.has_video,
        "holdForTransfer": call.hold_for_transfer,
        "startTime": int(call.start_time * 1000),
        "answerTime": int(call.answer_time * 1000) if call.answer_time else None,
        #: the recording's file name within recording.folder (wcsgw.calls.recording), or None
        "recording": getattr(call, "recording", None),
        #: per leg loss, jitter, RTT and MOS since the media started (wcsgw.calls.callstats)
        "stats": call_stats(call),
        "media": {
            "webrtcCodec": plan.browser_codec.rtpmap if plan and plan.browser_codec else None,
            "sipCodec": plan.sip_codec.rtpmap if plan and plan.sip_codec else None,
            "mode": plan.mode if plan else None,
            "video": call.video.describe() if call.video is not None else None,
        },
    }
    node = getattr(getattr(call, "env", None), "node_id", None)
    if node is not None:  # a cluster's node (docs/scaling.md): REST and callStatus alike
        out["node"] = node
    if with_sdp and call.browser_answer is not None:
        out["sdp"] = call.browser_answer
    return out
