"""Emails that follow a change: rendered inside the transaction and the tenant's scope, sent once it commits.

A rolled-back change sends nothing, the callback needs no database, and a mail server that is down
is logged, never turned into an error page or a retried job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from smtplib import SMTPException

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    body: str
    recipients: tuple[str, ...]


def subject(text: str) -> str:
    """A subject line with the product's prefix."""
    return f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{text}"


def _send(emails: Iterable[Email]) -> None:
    for email in emails:
        try:
            send_mail(
                subject=email.subject,
                message=email.body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=list(email.recipients),
            )
        except (SMTPException, OSError):
            logger.exception("Could not send “%s” to %s", email.subject, ", ".join(email.recipients))


def send_on_commit(emails: Iterable[Email | None]) -> None:
    """Send these emails (None and those without recipients skipped) when the transaction commits."""
    ready = [email for email in emails if email is not None and email.recipients]
    if ready:
        transaction.on_commit(partial(_send, ready))
