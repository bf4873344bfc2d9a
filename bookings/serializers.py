from __future__ import annotations

from rest_framework import serializers

from linguaflex.fields import QuerySerializer

from .models import Booking, BookingStatus


class BookingOutputSerializer(serializers.ModelSerializer):
    gig_id = serializers.IntegerField(read_only=True)
    gig_title = serializers.CharField(source="gig.title", read_only=True)
    student_id = serializers.IntegerField(read_only=True)
    student_name = serializers.CharField(source="student.display_name", read_only=True)
    teacher_id = serializers.IntegerField(read_only=True)
    teacher_name = serializers.CharField(source="teacher.display_name", read_only=True)
    payment_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Booking
        fields = [
            "id", "gig_id", "gig_title", "student_id", "student_name", "teacher_id", "teacher_name",
            "payment_id", "status", "scheduled_at", "created_at", "updated_at",
        ]
        read_only_fields = fields


class BookingListQuerySerializer(QuerySerializer):
    status = serializers.ChoiceField(choices=BookingStatus.choices, required=False)
