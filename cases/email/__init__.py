"""Developer e-mail: the context a template renders from, rendering, the outbox written with
each lifecycle step, delivery with retries, a lead's review of uncertain e-mail, and the
backends that send (``senders``)."""
