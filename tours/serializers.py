"""Tour catalogue as the API shows it, in the language asked for (``?lang=``), falling back to the tour's own."""

from __future__ import annotations

from rest_framework import serializers

from tours.models import BookingQuestion, CancellationTier, ItineraryDay, Option, Tour, TourImage, UnitType

TRANSLATED = ("title", "summary", "description", "inclusions", "exclusions", "meeting_point")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class OptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Option
        fields = ["id", "code", "name", "description", "is_private", "min_participants", "max_participants"]


class UnitTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = UnitType
        fields = [
            "id",
            "code",
            "kind",
            "name",
            "min_age",
            "max_age",
            "min_per_booking",
            "max_per_booking",
            "counts_toward_capacity",
            "seats_per_unit",
        ]


class QuestionSerializer(serializers.ModelSerializer):
    class Meta:
        model = BookingQuestion
        fields = ["code", "text", "help_text", "scope", "kind", "choices", "required"]


class ItineraryDaySerializer(serializers.ModelSerializer):
    class Meta:
        model = ItineraryDay
        fields = ["day", "title", "description"]


class ImageSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = TourImage
        fields = ["url", "alt_text"]

    def get_url(self, image: TourImage) -> str:
        return image.image.url if image.image else ""


class CancellationTierSerializer(serializers.ModelSerializer):
    class Meta:
        model = CancellationTier
        fields = ["days_before", "refund_percent"]


class TourSummarySerializer(serializers.ModelSerializer):
    """The list view: enough for a result card."""

    title = serializers.SerializerMethodField()
    summary = serializers.SerializerMethodField()
    language = serializers.SerializerMethodField()
    destination = serializers.CharField(source="destination.name", default=None, read_only=True)
    categories = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)

    class Meta:
        model = Tour
        fields = [
            "id",
            "slug",
            "title",
            "summary",
            "language",
            "duration_minutes",
            "difficulty",
            "languages",
            "destination",
            "categories",
        ]

    def _translation(self, tour: Tour):
        language = self.context.get("language")
        if not language:
            return None
        return next((t for t in tour.translations.all() if t.language == language), None)

    def _text(self, tour: Tour, name: str) -> str:
        translation = self._translation(tour)
        return (getattr(translation, name, "") if translation else "") or getattr(tour, name)

    def get_title(self, tour: Tour) -> str:
        return self._text(tour, "title")

    def get_summary(self, tour: Tour) -> str:
        return self._text(tour, "summary")

    def get_language(self, tour: Tour) -> str:
        translation = self._translation(tour)
        return translation.language if translation else self.context.get("default_language", "")


class TourDetailSerializer(TourSummarySerializer):
    description = serializers.SerializerMethodField(help_text="Sanitised HTML.")
    inclusions = serializers.SerializerMethodField()
    exclusions = serializers.SerializerMethodField()
    meeting_point = serializers.SerializerMethodField()
    meeting_location = serializers.SerializerMethodField()
    time_zone = serializers.CharField()
    options = serializers.SerializerMethodField()
    unit_types = UnitTypeSerializer(many=True, read_only=True)
    questions = QuestionSerializer(many=True, read_only=True)
    itinerary = ItineraryDaySerializer(many=True, read_only=True)
    images = ImageSerializer(many=True, read_only=True)
    cancellation_policy = CancellationTierSerializer(source="cancellation_tiers", many=True, read_only=True)

    class Meta(TourSummarySerializer.Meta):
        fields = [
            *TourSummarySerializer.Meta.fields,
            "description",
            "inclusions",
            "exclusions",
            "meeting_point",
            "meeting_location",
            "time_zone",
            "options",
            "unit_types",
            "questions",
            "itinerary",
            "images",
            "cancellation_policy",
        ]

    def get_description(self, tour: Tour) -> str:
        return self._text(tour, "description")

    def get_inclusions(self, tour: Tour) -> list[str]:
        return _lines(self._text(tour, "inclusions"))

    def get_exclusions(self, tour: Tour) -> list[str]:
        return _lines(self._text(tour, "exclusions"))

    def get_meeting_point(self, tour: Tour) -> str:
        return self._text(tour, "meeting_point")

    def get_meeting_location(self, tour: Tour) -> dict | None:
        if tour.meeting_latitude is None or tour.meeting_longitude is None:
            return None
        return {"latitude": str(tour.meeting_latitude), "longitude": str(tour.meeting_longitude)}

    def get_options(self, tour: Tour) -> list[dict]:
        return OptionSerializer([o for o in tour.options.all() if o.is_active], many=True).data
