"""The development email backend: each message as a reader sees it (headers, the text part, the names and sizes of
its attachments) instead of Django's console dump, which prints every PDF attachment as pages of base64."""

from __future__ import annotations

from django.core.mail.backends.console import EmailBackend as ConsoleBackend


class SummaryConsoleBackend(ConsoleBackend):
    def write_message(self, message) -> None:
        lines = [
            "-" * 79,
            f"From: {message.from_email}",
            f"To: {', '.join(message.to)}",
            *([f"Reply-To: {', '.join(message.reply_to)}"] if message.reply_to else []),
            f"Subject: {message.subject}",
            "",
            message.body.rstrip(),
        ]
        for attachment in message.attachments:
            name, content, mimetype = (
                (
                    attachment.get_filename(),
                    attachment.get_payload(decode=True),
                    attachment.get_content_type(),
                )
                if not isinstance(attachment, tuple)
                else attachment
            )
            size = len(content.encode() if isinstance(content, str) else content or b"")
            lines.append(f"[attachment: {name} ({mimetype}, {size:,} bytes)]")
        alternatives = [mimetype for _content, mimetype in getattr(message, "alternatives", [])]
        if alternatives:
            lines.append(f"[also as: {', '.join(alternatives)}]")
        self.stream.write("\n".join(lines) + "\n")
