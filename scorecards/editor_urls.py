"""Pages where administrators edit scorecard versions and preview their effect."""

urlpatterns: list = []
