from django.shortcuts import render


def home(request):
    return render(request, "retail/home.html")


def manage_booking(request, token: str):
    from django.http import Http404

    from bookings.links import booking_for_manage_token

    booking = booking_for_manage_token(token)
    if booking is None:
        raise Http404("No booking")
    return render(request, "retail/home.html", {"booking": booking})
