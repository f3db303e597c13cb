from tests.conftest import problem_of
from tests.factories import confirmed_booking


async def test_confirmed_booking_has_one_signed_ticket_per_admission(api):
    booking = await confirmed_booking(api, quantity=3)
    assert booking["status"] == "confirmed"
    assert len(booking["tickets"]) == 3
    assert all(t["link"].startswith("https://tickets.test/t/") for t in booking["tickets"])


async def test_missing_token_is_refused_with_problem_json(client):
    response = await client.get("/api/v1/events")
    assert response.status_code == 401
    assert problem_of(response)["code"] == "unauthenticated"
