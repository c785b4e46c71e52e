"""The catalogue on sale over the API: tour search (text, dates with seats, prices: from the departures on sale),
tour pages and quotes. The catalogue is public (published tours only); a quote is priced for whoever asks: a
traveller (retail), an agency's booker (trade, their agency), or staff (either channel, for an agency)."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import permissions, serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import DomainError
from inventory import search
from inventory.models import Departure
from partners.models import Agency
from tenants.permissions import IsTenantMember, partner_of
from tenants.serializers import TenantRelatedField
from tours import pricing
from tours.models import Channel, Option, Tour
from tours.serializers import TourDetailSerializer

LANGUAGE = OpenApiParameter("lang", str, description="Language code; falls back to the tour's own language.")


def selling_context(
    request, channel: str | None = None, agency: Agency | None = None
) -> tuple[str, Agency | None]:
    """Who is buying: an agency's booker always sells on the trade channel for their agency; staff may ask for
    either channel (and an agency on trade); anyone else buys retail."""
    partner = partner_of(request)
    if partner is not None:
        return Channel.TRADE, partner.agency
    if IsTenantMember().has_permission(request, None):
        channel = channel or (Channel.TRADE if agency is not None else Channel.RETAIL)
        if channel == Channel.TRADE and agency is None:
            message = "Name the agency to price or book on the trade channel."
            raise DomainError(message, code="agency_required", fields={"agency": [message]})
        return channel, agency if channel == Channel.TRADE else None
    if channel == Channel.TRADE or agency is not None:
        raise DomainError("The trade channel is for partner agencies.", code="permission_denied")
    return Channel.RETAIL, None


class TourSearchParams(serializers.Serializer):
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Words to look for."
    )
    lang = serializers.CharField(required=False, allow_blank=True, max_length=8)
    destination = serializers.SlugField(required=False, help_text="Destination slug.")
    category = serializers.SlugField(required=False, help_text="Category slug.")
    date_from = serializers.DateField(
        required=False, help_text="With seats on a departure from this local date."
    )
    date_to = serializers.DateField(required=False)
    price_min = serializers.IntegerField(
        required=False, min_value=0, help_text="Minor units of the currency."
    )
    price_max = serializers.IntegerField(required=False, min_value=0)
    currency = serializers.CharField(required=False, min_length=3, max_length=3)
    duration_min = serializers.IntegerField(required=False, min_value=0, help_text="Minutes.")
    duration_max = serializers.IntegerField(required=False, min_value=0)
    guiding_language = serializers.CharField(required=False, max_length=8)
    sort = serializers.ChoiceField(
        choices=["relevance", "price", "-price", "next_departure"], default="relevance"
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=20)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=10_000, default=0)


class TourListingSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.SlugField()
    title = serializers.CharField()
    summary = serializers.CharField()
    destination = serializers.CharField(allow_null=True)
    duration_minutes = serializers.IntegerField()
    languages = serializers.ListField(child=serializers.CharField())
    next_departure = serializers.DateTimeField(allow_null=True)
    price_from = serializers.SerializerMethodField()

    def get_price_from(self, listing) -> dict | None:
        return listing.price_from.as_dict() if listing.price_from else None


class TourSearchResultsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    results = TourListingSerializer(many=True)


def check_on_sale(request, departure: Departure) -> None:
    """Travellers and agencies price and hold only what is published; staff may work on drafts."""
    if IsTenantMember().has_permission(request, None):
        return
    if departure.tour.status != Tour.Status.PUBLISHED:
        message = "This departure does not exist or is not on sale."
        raise DomainError(message, code="not_on_sale", fields={"departure": [message]})


@extend_schema_view(
    list=extend_schema(
        tags=["catalogue"],
        summary="Search published tours (text, destination, dates with seats, price, duration, language)",
        parameters=[TourSearchParams],
        responses=TourSearchResultsSerializer,
    ),
    retrieve=extend_schema(tags=["catalogue"], summary="One published tour, everything a booking page needs"),
)
class TourViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [permissions.AllowAny]
    lookup_field = "slug"

    serializer_class = TourDetailSerializer  # the list answers search listings (TourListingSerializer)

    def list(self, request, *args, **kwargs):
        params = TourSearchParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = dict(params.validated_data)
        text, language = data.pop("q", ""), data.pop("lang", "") or None
        found = search.search_tours(search.SearchQuery(text=text, language=language, **data))
        body = {
            "count": found.total,
            "limit": data["limit"],
            "offset": data["offset"],
            "results": found.results,
        }
        return Response(TourSearchResultsSerializer(body).data)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        tenant = self.request.tenant
        context["language"] = (self.request.query_params.get("lang") or "").strip()[:8]
        context["default_language"] = tenant.default_language
        return context

    def get_queryset(self):
        queryset = (
            Tour.objects.filter(status=Tour.Status.PUBLISHED)
            .select_related("destination")
            .prefetch_related("categories")
            .order_by("title")
        )
        return queryset.prefetch_related(
            "translations",
            Prefetch("options", queryset=Option.objects.order_by("position", "name")),
            "unit_types",
            "questions",
            "itinerary",
            "images",
            "cancellation_tiers",
        )


class QuoteRequestSerializer(serializers.Serializer):
    departure = TenantRelatedField(Departure)
    units = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=1000),
        allow_empty=False,
        help_text="Unit code → count.",
    )
    promo_code = serializers.CharField(required=False, allow_blank=True, max_length=40)
    currency = serializers.CharField(required=False, min_length=3, max_length=3)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, help_text="Staff only.")
    agency = TenantRelatedField(Agency, required=False, help_text="Staff only: price for this agency.")


@extend_schema(
    tags=["catalogue"],
    summary="Price units on a departure (line by line, with tax and any promo code)",
    request=QuoteRequestSerializer,
    responses={200: dict},
    examples=[
        OpenApiExample(
            "Two adults and a child",
            request_only=True,
            value={"departure": "01930c7e-…", "units": {"adult": 2, "child": 1}, "promo_code": "SPRING10"},
        )
    ],
)
class QuoteView(APIView):
    permission_classes = [permissions.AllowAny]

    def post(self, request):
        payload = QuoteRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        channel, agency = selling_context(request, data.get("channel"), data.get("agency"))
        departure = data["departure"]
        check_on_sale(request, departure)
        result = pricing.quote(
            departure.option,
            departure,
            data["units"],
            channel,
            agency=agency,
            currency=data.get("currency"),
            promo_code=data.get("promo_code") or None,
        )
        return Response(result.as_snapshot())
