import threading

import pytest
from django.db import connection

from accounts.exceptions import SeatLimitReached
from accounts.models import Invite, Membership, Organization
from accounts.services import invite_create, membership_join_by_domain, seats_in_use
from billing.services.subscriptions import subscription_start_trial
from experiments.models import Event

from ..conftest import organization_on
from ..factories import InviteFactory, MembershipFactory, UserFactory


def _domain_organization(members: int) -> tuple[Organization, object]:
    organization, admin = organization_on("free", members=members)
    organization.join_by_domain = True
    organization.save()
    return organization, admin


def test_free_edition_refuses_the_eleventh_user_with_a_clear_message(catalog):
    organization, admin = _domain_organization(members=10)
    newcomer = UserFactory(email=f"new@{organization.email_domain}")
    with pytest.raises(SeatLimitReached) as refused:
        membership_join_by_domain(organization=organization, user=newcomer)
    message = refused.value.message
    assert "Tracker Free allows 10 users" in message
    assert f"{organization.name} already has 10" in message
    assert "move to Tracker Standard (up to 100 users)" in message
    assert Membership.objects.filter(organization=organization).count() == 10
    refusal = Event.objects.get(name="seat_limit_reached", organization=organization)
    assert refusal.properties["attempted"] == "join_by_domain"
    assert refusal.properties["seat_limit"] == 10


def test_pending_invites_hold_seats(catalog):
    organization, admin = organization_on("free", members=8)
    invite_create(organization=organization, actor=admin, email="one@example.org")
    assert seats_in_use(organization=organization) == 9
    invite_create(organization=organization, actor=admin, email="two@example.org")
    with pytest.raises(SeatLimitReached, match="already has 10 \\(members and pending invites\\)"):
        invite_create(organization=organization, actor=admin, email="three@example.org")
    assert not Invite.objects.filter(email="three@example.org").exists()


def test_expired_invites_free_their_seat(catalog):
    organization, admin = organization_on("free", members=9)
    InviteFactory(organization=organization, expires_at="2000-01-01T00:00:00Z")
    assert seats_in_use(organization=organization) == 9
    invite_create(organization=organization, actor=admin, email="fresh@example.org")


def test_a_trial_of_a_bigger_edition_has_its_seat_limit(catalog):
    organization, admin = organization_on("standard", members=10)
    organization.join_by_domain = True
    organization.save()
    membership_join_by_domain(organization=organization, user=UserFactory(email=f"eleven@{organization.email_domain}"))
    assert Membership.objects.filter(organization=organization).count() == 11
    assert organization.subscriptions.get().seat_limit == 100


def test_every_product_subscription_must_have_room(catalog):
    from billing.services.subscriptions import subscription_start_trial
    from catalog.selectors import edition_get

    organization, admin = _domain_organization(members=1)
    subscription_start_trial(
        organization=organization, edition=edition_get(product_code="wiki", edition_code="standard"), actor=admin
    )
    for _ in range(9):
        MembershipFactory(organization=organization)
    with pytest.raises(SeatLimitReached, match="Tracker Free allows 10 users"):
        membership_join_by_domain(organization=organization, user=UserFactory(email=f"x@{organization.email_domain}"))


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_joins_end_with_exactly_ten_members(catalog):
    organization, admin = _domain_organization(members=9)
    joiners = [UserFactory(email=f"joiner{i}@{organization.email_domain}") for i in range(50)]
    barrier = threading.Barrier(len(joiners))
    outcomes: list[str] = []
    lock = threading.Lock()

    def join(user):
        try:
            barrier.wait()
            membership_join_by_domain(organization=organization, user=user)
            outcome = "joined"
        except SeatLimitReached:
            outcome = "refused"
        except Exception as error:  # noqa: BLE001 - any other failure is reported below
            outcome = f"error: {error!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=join, args=(user,)) for user in joiners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(set(outcomes)) == ["joined", "refused"], outcomes
    assert outcomes.count("joined") == 1
    assert outcomes.count("refused") == 49
    assert Membership.objects.filter(organization=organization).count() == 10
    assert Event.objects.filter(name="joined_by_domain", organization=organization).count() == 1
    assert Event.objects.filter(name="seat_limit_reached", organization=organization).count() == 49


def test_accepting_an_invite_needs_a_seat_when_the_limit_shrank(catalog):
    from accounts.services import invite_accept

    organization, admin = organization_on("standard", members=9)
    invite = invite_create(organization=organization, actor=admin, email="late@example.org")
    organization.subscriptions.update(seat_limit=9)  # e.g. a downgrade since the invite
    late = UserFactory(email="late@example.org")
    with pytest.raises(SeatLimitReached):
        invite_accept(invite=invite, user=late)
    assert Membership.objects.filter(organization=organization).count() == 9
    assert Invite.objects.get(pk=invite.pk).status == Invite.Status.PENDING


def test_a_second_product_trial_must_fit_the_organization(catalog):
    from billing.models import Subscription
    from catalog.selectors import edition_get

    organization, admin = organization_on("standard", members=11)
    with pytest.raises(SeatLimitReached, match="Wiki Free allows 10 users and .* has 11"):
        subscription_start_trial(
            organization=organization, edition=edition_get(product_code="wiki", edition_code="free"), actor=admin
        )
    assert not Subscription.objects.filter(organization=organization, product__code="wiki").exists()
