"""Review pages: a manager's reviews, cycles and memos, the review workspace, the partner's reviews."""

from django.urls import path

from reviews import views

urlpatterns = [
    path("reviews/", views.my_reviews, name="review_mine"),
    path("reviews/cycles/", views.cycle_list, name="review_cycles"),
    path("reviews/cycles/<int:pk>/", views.cycle_detail, name="review_cycle"),
    path("reviews/cycles/<int:pk>/close/", views.cycle_close, name="review_cycle_close"),
    path("reviews/cycles/<int:pk>/reopen/", views.cycle_reopen, name="review_cycle_reopen"),
    path("reviews/cycles/<int:pk>/memo/", views.cycle_memo, name="review_cycle_memo"),
    path("reviews/cycles/<int:pk>/memo.csv", views.cycle_memo_download, name="review_cycle_memo_csv"),
    path("reviews/<int:pk>/", views.review_detail, name="review_detail"),
    path("reviews/<int:pk>/move/", views.review_move, name="review_move"),
    path("reviews/<int:pk>/ratings/<int:prompt_pk>/", views.review_rate, name="review_rate"),
    path("reviews/<int:pk>/commitments/", views.review_commitment, name="review_commitment"),
    path("reviews/<int:pk>/notes/", views.review_note, name="review_note"),
    path("reviews/<int:pk>/decisions/", views.review_decision, name="review_decision"),
    path("reviews/<int:pk>/summary/", views.review_summary, name="review_summary"),
    path("reviews/<int:pk>/amend/", views.review_amend, name="review_amend"),
    path("portal/reviews/", views.portal_reviews, name="portal_reviews"),
    path("portal/reviews/<int:pk>/", views.portal_review, name="portal_review"),
]
