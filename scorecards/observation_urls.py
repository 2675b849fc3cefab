"""Pages for entering and uploading metric observations and following recomputes."""

urlpatterns: list = []
