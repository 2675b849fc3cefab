"""The overdue digest: one email per owner, each action reminded once per due date, the daily beat task."""

from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings
from django.db import connection, transaction

from actions.models import ActionReminder, ActionStatus
from actions.services.followup import action_transition
from actions.services.items import action_update
from actions.services.reminders import DigestSent, overdue_reminders_send
from actions.tasks import overdue_reminders_fanout_task, overdue_reminders_task
from partnerhub.celery import app as celery_app
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.models import Membership
from tests.actions.conftest import backdate, days, new_action


def send(on_commit, *, today):
    with on_commit(execute=True):
        return overdue_reminders_send(today=today)


def by_recipient(mailoutbox) -> dict[str, list]:
    found: dict[str, list] = {}
    for email in mailoutbox:
        found.setdefault(email.to[0], []).append(email)
    return found


@pytest.fixture
def overdue(a):
    """Three overdue actions of two owners on day +10, plus actions the digest must leave alone."""
    manager, member = a.users["partner_manager"], a.users["partner_member"]
    actions = {
        "webinar": new_action(a, title="Run the webinar", owner=manager, due_on=days(1)),
        "pricing": new_action(a, title="Fix the price list", owner=manager, due_on=days(3), partner_index=1),
        "training": new_action(a, title="Certify two engineers", owner=member, due_on=days(2)),
        "not_due": new_action(a, title="Plan the kickoff", owner=manager, due_on=days(20)),
        "done": new_action(a, title="Send the deck", owner=manager, due_on=days(1)),
        "cancelled": new_action(a, title="Old idea", owner=member, due_on=days(1)),
        "unowned": new_action(a, title="Nobody's", due_on=days(1)),
    }
    action_transition(action=actions["done"], to=ActionStatus.DONE, by=manager)
    action_transition(action=actions["cancelled"], to=ActionStatus.CANCELLED, by=manager, note="Dropped.")
    return actions


def test_each_owner_gets_one_email_listing_their_overdue_actions(
    a, overdue, mailoutbox, django_capture_on_commit_callbacks
):
    sent = send(django_capture_on_commit_callbacks, today=days(10))

    assert (sent.emails, sent.reminders) == (2, 3)
    emails = by_recipient(mailoutbox)
    assert sorted(emails) == ["partner_manager@acme.test", "partner_member@acme.test"]
    [manager_email] = emails["partner_manager@acme.test"]
    assert manager_email.subject == "[PartnerHub] 2 actions you own are overdue"
    assert "Run the webinar" in manager_email.body and "Fix the price list" in manager_email.body
    assert manager_email.body.index("Run the webinar") < manager_email.body.index("Fix the price list")
    assert "9 days ago" in manager_email.body and "7 days ago" in manager_email.body
    for untouched in ("Plan the kickoff", "Send the deck", "Old idea", "Nobody's"):
        assert untouched not in manager_email.body
    [member_email] = emails["partner_member@acme.test"]
    assert member_email.subject == "[PartnerHub] An action you own is overdue"
    assert "Certify two engineers" in member_email.body and "(8 days ago)" in member_email.body
    assert set(ActionReminder.objects.values_list("action_id", "owner_id", "due_on")) == {
        (overdue[key].pk, overdue[key].owner_id, overdue[key].due_on) for key in ("webinar", "pricing", "training")
    }


def test_running_the_digest_twice_sends_nothing_the_second_time(
    a, overdue, mailoutbox, django_capture_on_commit_callbacks
):
    send(django_capture_on_commit_callbacks, today=days(10))
    again = send(django_capture_on_commit_callbacks, today=days(10))
    later = send(django_capture_on_commit_callbacks, today=days(11))

    assert (again.emails, again.reminders) == (later.emails, later.reminders) == (0, 0)
    assert len(mailoutbox) == 2 and ActionReminder.objects.count() == 3


def test_a_due_date_moved_later_is_reminded_again_once_it_passes(a, mailoutbox, django_capture_on_commit_callbacks):
    owner = a.users["partner_member"]
    action = new_action(a, owner=owner, due_on=days(1))
    send(django_capture_on_commit_callbacks, today=days(2))
    assert len(mailoutbox) == 1

    action_update(action=action, by=a.users["partner_manager"], due_on=days(10))
    send(django_capture_on_commit_callbacks, today=days(5))  # the new date has not passed yet
    assert len(mailoutbox) == 1
    send(django_capture_on_commit_callbacks, today=days(11))
    send(django_capture_on_commit_callbacks, today=days(12))

    assert len(mailoutbox) == 2 and mailoutbox[1].to == [owner.email]
    assert sorted(ActionReminder.objects.values_list("due_on", flat=True)) == [days(1), days(10)]


def test_a_new_owner_is_reminded_of_an_overdue_action_the_previous_owner_was_reminded_of(
    a, mailoutbox, django_capture_on_commit_callbacks
):
    action = new_action(a, owner=a.users["partner_member"], due_on=days(1))
    send(django_capture_on_commit_callbacks, today=days(3))
    action_update(action=action, by=a.users["partner_manager"], owner=a.users["partner_admin"])
    send(django_capture_on_commit_callbacks, today=days(3))
    assert [email.to for email in mailoutbox] == [[a.users["partner_member"].email], [a.users["partner_admin"].email]]


def test_an_owner_who_left_the_workspace_or_was_deactivated_is_not_emailed(
    a, mailoutbox, django_capture_on_commit_callbacks
):
    new_action(a, owner=a.users["partner_member"], due_on=days(1))
    new_action(a, owner=a.users["partner_admin"], due_on=days(1))
    Membership.objects.filter(user=a.users["partner_member"]).delete()
    a.users["partner_admin"].is_active = False
    a.users["partner_admin"].save(update_fields=["is_active"])

    sent = send(django_capture_on_commit_callbacks, today=days(5))

    assert (sent.emails, sent.reminders) == (0, 0) and mailoutbox == []


def test_a_rolled_back_digest_sends_nothing_and_records_nothing(
    a, overdue, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                overdue_reminders_send(today=days(10))
                raise RuntimeError("the worker died")
        except RuntimeError:
            pass
    assert mailoutbox == [] and not ActionReminder.objects.exists()


def test_the_digest_covers_the_active_workspace_only(world, mailoutbox, django_capture_on_commit_callbacks):
    with tenant_scope(world.b.tenant):
        new_action(world.b, owner=world.b.users["partner_manager"], due_on=days(1))
    with tenant_scope(world.a.tenant):
        new_action(world.a, owner=world.a.users["partner_manager"], due_on=days(1))
        send(django_capture_on_commit_callbacks, today=days(2))
    assert [email.to for email in mailoutbox] == [["partner_manager@acme.test"]]


# --- The task and the beat --------------------------------------------------------------------------------


def test_the_daily_beat_fans_out_one_digest_per_active_workspace_through_celery(
    world, mailoutbox, django_capture_on_commit_callbacks
):
    for tw in (world.a, world.b):
        with tenant_scope(tw.tenant):
            backdate(
                new_action(tw, owner=tw.users["partner_manager"], title=f"{tw.tenant.name} action"), due_days_ago=2
            )
    entry = settings.CELERY_BEAT_SCHEDULE["actions-overdue-reminders"]
    assert entry["task"] in celery_app.tasks

    with django_capture_on_commit_callbacks(execute=True):
        fanned_out = celery_app.tasks[entry["task"]].delay().get()
    with django_capture_on_commit_callbacks(execute=True):
        overdue_reminders_fanout_task.delay().get()  # the next day's tick, or a redelivery

    assert fanned_out == 2
    assert sorted(email.to[0] for email in mailoutbox) == ["partner_manager@acme.test", "partner_manager@globex.test"]
    for tw in (world.a, world.b):
        with tenant_scope(tw.tenant):
            assert ActionReminder.objects.count() == 1


def test_the_digest_task_takes_the_day_and_reports_what_it_sent(a, overdue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = overdue_reminders_task.delay(tenant_id=a.tenant.pk, today=days(10).isoformat()).get()
    assert result == {"emails": 2, "reminders": 3}
    task = celery_app.tasks["actions.overdue_reminders_task"]
    assert task.acks_late and task.max_retries == 5


# --- Two digests at once ----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_two_digests_at_once_remind_each_action_once(committed_world, mailoutbox):
    """The second digest waits on the first one's row locks, then finds its reminders and sends nothing."""
    world = committed_world
    with tenant_scope(world.a.tenant):
        for n in range(3):
            new_action(world.a, title=f"Overdue {n}", owner=world.a.users["partner_manager"], due_on=days(1))
    first_done, release_first = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def first_digest():
        try:
            with tenant_scope(world.a.tenant), transaction.atomic():
                outcome["first"] = overdue_reminders_send(today=days(5))
                first_done.set()
                release_first.wait(timeout=20)  # holds the locks and the rows uncommitted
        finally:
            connection.close()

    def second_digest():
        try:
            with tenant_scope(world.a.tenant):
                outcome["second"] = overdue_reminders_send(today=days(5))
        except Exception as error:  # reported by the assertion below
            outcome["second"] = error
        finally:
            connection.close()

    first = threading.Thread(target=first_digest)
    first.start()
    assert first_done.wait(timeout=20)
    second = threading.Thread(target=second_digest)
    second.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # release the first once the second waits on its locks
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                break
        time.sleep(0.05)
    release_first.set()
    first.join(timeout=20)
    second.join(timeout=20)

    assert (outcome["first"].emails, outcome["first"].reminders) == (1, 3)
    assert outcome["second"] == DigestSent(emails=0, reminders=0), outcome["second"]
    assert len(mailoutbox) == 1
    with tenant_scope(world.a.tenant):
        assert ActionReminder.objects.count() == 3
