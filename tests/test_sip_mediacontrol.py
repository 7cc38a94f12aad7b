"""wcsgw.sip.mediacontrol: RFC 5168 media_control bodies and the INFO fast update pacing."""

from __future__ import annotations

from twisted.trial import unittest

from wcsgw.sip.mediacontrol import (
    FAST_UPDATE_INTERVAL,
    IGNORED,
    MAX_BODY,
    FastUpdateSender,
    is_media_control,
    parse_media_control,
    picture_fast_update_body,
)

# As Asterisk (chan_pjsip) sends it: CRLF and indentation.
ASTERISK = (b'<?xml version="1.0" encoding="utf-8" ?>\r\n <media_control>\r\n  <vc_primitive>\r\n'
            b"   <to_encoder>\r\n    <picture_fast_update/>\r\n   </to_encoder>\r\n"
            b"  </vc_primitive>\r\n </media_control>\r\n")
# As Jami/MicroSIP send it: one line, with a stream_id.
ONE_LINE = (b'<?xml version="1.0" encoding="utf-8" ?><media_control><vc_primitive>'
            b"<stream_id>1</stream_id><to_encoder><picture_fast_update/></to_encoder>"
            b"</vc_primitive></media_control>")


class BodyTests(unittest.TestCase):
    def test_our_body_reads_back_as_a_request(self) -> None:
        body = picture_fast_update_body()
        self.assertTrue(body.startswith(b"<?xml"))
        control = parse_media_control(body)
        self.assertTrue(control.picture_fast_update)
        self.assertEqual((control.stream_ids, control.general_error), ((), None))

    def test_senders_in_the_wild(self) -> None:
        self.assertTrue(parse_media_control(ASTERISK).picture_fast_update)
        control = parse_media_control(ONE_LINE)
        self.assertTrue(control.picture_fast_update)
        self.assertEqual(control.stream_ids, ("1",))

    def test_without_declaration_with_namespace_and_tabs(self) -> None:
        for body in (
            b"<media_control><vc_primitive><to_encoder><picture_fast_update/></to_encoder>"
            b"</vc_primitive></media_control>",
            b'<media_control xmlns="urn:example:mc">\n\t<vc_primitive>\n\t\t<to_encoder>'
            b"\n\t\t\t<picture_fast_update></picture_fast_update>\n\t\t</to_encoder>\n"
            b"\t</vc_primitive>\n</media_control>\n",
            b'<mc:media_control xmlns:mc="urn:x"><mc:vc_primitive><mc:to_encoder>'
            b"<mc:picture_fast_update/></mc:to_encoder></mc:vc_primitive></mc:media_control>",
            b"\xef\xbb\xbf" + ASTERISK,  # a UTF-8 BOM
        ):
            self.assertTrue(parse_media_control(body).picture_fast_update, body)

    def test_second_primitive_may_be_the_request(self) -> None:
        body = (b"<media_control><vc_primitive><to_encoder><other/></to_encoder></vc_primitive>"
                b"<vc_primitive><to_encoder><picture_fast_update/></to_encoder></vc_primitive>"
                b"</media_control>")
        self.assertTrue(parse_media_control(body).picture_fast_update)

    def test_other_commands_and_wrong_nesting_are_not_requests(self) -> None:
        for body in (
            b"<media_control><vc_primitive><to_encoder><mute/></to_encoder></vc_primitive>"
            b"</media_control>",
            b"<media_control><picture_fast_update/></media_control>",  # not in to_encoder
            b"<media_control><vc_primitive><picture_fast_update/></vc_primitive></media_control>",
            b"<other><vc_primitive><to_encoder><picture_fast_update/></to_encoder>"
            b"</vc_primitive></other>",  # wrong root
        ):
            self.assertFalse(parse_media_control(body).picture_fast_update, body)

    def test_general_error(self) -> None:
        control = parse_media_control(b"<media_control>\n  <general_error>\n  Parse error in XML"
                                      b"\n  </general_error>\n</media_control>")
        self.assertFalse(control.picture_fast_update)
        self.assertEqual(control.general_error, "Parse error in XML")
        empty = parse_media_control(b"<media_control><general_error/></media_control>")
        self.assertEqual(empty.general_error, "")

    def test_garbage_is_ignored_never_raised(self) -> None:
        for body in (
            b"", b"picture_fast_update", b"<media_control>", b"<media_control><vc_primitive>",
            b"\xff\xfe\x00<", b"Signal=5\r\nDuration=250\r\n", b"<<<>>>", b"<a></b>",
            b"<media_control><vc_primitive><to_encoder><picture_fast_update/></to_encoder>",
            ASTERISK[: len(ASTERISK) // 2],
            ASTERISK.decode().encode("utf-16"),  # NUL bytes: refused
        ):
            self.assertEqual(parse_media_control(body), IGNORED, body)

    def test_doctype_and_entities_are_refused(self) -> None:
        lol = (b'<?xml version="1.0"?><!DOCTYPE media_control [<!ENTITY a "aaaaaaaaaa">'
               b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
               b"<media_control><vc_primitive><to_encoder><picture_fast_update/>"
               b"</to_encoder></vc_primitive><general_error>&b;</general_error></media_control>")
        self.assertEqual(parse_media_control(lol), IGNORED)

    def test_oversized_body_is_ignored(self) -> None:
        body = ASTERISK.replace(b"<vc_primitive>", b"<vc_primitive>" + b" " * MAX_BODY)
        self.assertEqual(parse_media_control(body), IGNORED)

    def test_content_type(self) -> None:
        for value in ("application/media_control+xml", "Application/Media_Control+XML",
                      " application/media_control+xml ; charset=utf-8"):
            self.assertTrue(is_media_control(value), value)
        for value in ("", "application/xml", "application/dtmf-relay",
                      "application/media_control"):
            self.assertFalse(is_media_control(value), value)


class SenderTests(unittest.TestCase):
    def test_one_in_flight(self) -> None:
        sender = FastUpdateSender()
        self.assertTrue(sender.request(10.0))
        self.assertFalse(sender.request(20.0))  # unanswered: its key frame serves this too
        self.assertFalse(sender.request(20.0, force=True))
        sender.answered(200)
        self.assertTrue(sender.request(20.0))
        self.assertEqual((sender.sent, sender.suppressed), (2, 2))

    def test_rate_limited_unless_forced(self) -> None:
        sender = FastUpdateSender()
        self.assertTrue(sender.request(10.0))
        sender.answered(200)
        self.assertFalse(sender.request(10.0 + FAST_UPDATE_INTERVAL / 2))
        self.assertTrue(sender.request(10.0 + FAST_UPDATE_INTERVAL / 2, force=True))
        sender.answered(200)
        self.assertTrue(sender.request(11.0 + FAST_UPDATE_INTERVAL))

    def test_refusing_answers_turn_it_off(self) -> None:
        for status in (405, 415, 501):
            sender = FastUpdateSender()
            self.assertTrue(sender.request(1.0))
            sender.answered(status)
            self.assertFalse(sender.enabled)
            self.assertEqual(sender.disabled_by, status)
            self.assertFalse(sender.request(100.0, force=True))

    def test_other_failures_keep_it_on(self) -> None:
        for status in (None, 403, 408, 480, 500, 603):
            sender = FastUpdateSender()
            self.assertTrue(sender.request(1.0))
            sender.answered(status)
            self.assertTrue(sender.enabled, status)
            self.assertTrue(sender.request(5.0), status)
