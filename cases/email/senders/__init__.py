"""The delivery backends behind the ``EmailSender`` protocol: a mail folder, the console, and
SendGrid through its official client (with a keep-alive transport)."""
