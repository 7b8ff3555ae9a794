"""Developer e-mail: rendering, MIME building and delivery backends.

``render`` turns a template and a context into subject, text and HTML; ``message`` builds the
RFC 5322 message with its stable Message-ID; ``file``, ``console`` and ``sendgrid`` deliver it.
"""

from __future__ import annotations
