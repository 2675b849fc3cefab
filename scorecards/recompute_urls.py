"""Pages that follow and start score recomputes."""

urlpatterns: list = []
