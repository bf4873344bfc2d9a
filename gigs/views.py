from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from linguaflex.openapi import PAGE_PARAMETERS, error_responses
from linguaflex.pagination import StandardPagination, paginated_response

from . import selectors, services
from .serializers import GigInputSerializer, GigListQuerySerializer, GigOutputSerializer, GigUpdateSerializer


def _to_service_fields(data: dict) -> dict:
    data = dict(data)
    if "price" in data:
        data["price_cents"] = data.pop("price")
    return data


class GigListCreateView(APIView):
    pagination_class = StandardPagination
    @extend_schema(
        operation_id="gigs_list",
        parameters=[GigListQuerySerializer, *PAGE_PARAMETERS],
        responses={200: GigOutputSerializer(many=True), **error_responses(400, 401, 404)},
    )
    def get(self, request):
        query = GigListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        gigs = selectors.gig_list(
            user=request.user,
            language=params.get("language"),
            teacher_id=params.get("teacher"),
            mine=params.get("mine", False),
            ordering=params.get("ordering"),
        )
        return paginated_response(request, self, gigs, GigOutputSerializer)

    @extend_schema(
        operation_id="gigs_create",
        request=GigInputSerializer,
        responses={201: GigOutputSerializer, **error_responses(400, 401, 403, 413, 415)},
    )
    def post(self, request):
        serializer = GigInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        gig = services.gig_create(teacher=request.user, **_to_service_fields(serializer.validated_data))
        return Response(GigOutputSerializer(gig).data, status=status.HTTP_201_CREATED)


class GigDetailView(APIView):
    @extend_schema(operation_id="gigs_retrieve", responses={200: GigOutputSerializer, **error_responses(401, 404)})
    def get(self, request, gig_id: int):
        gig = selectors.gig_get_visible(user=request.user, gig_id=gig_id)
        return Response(GigOutputSerializer(gig).data)

    @extend_schema(
        operation_id="gigs_partial_update",
        request=GigUpdateSerializer,
        responses={200: GigOutputSerializer, **error_responses(400, 401, 403, 404, 413, 415)},
    )
    def patch(self, request, gig_id: int):
        gig = selectors.gig_get_visible(user=request.user, gig_id=gig_id)
        serializer = GigUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        gig = services.gig_update(gig=gig, user=request.user, data=_to_service_fields(serializer.validated_data))
        return Response(GigOutputSerializer(gig).data)

    @extend_schema(operation_id="gigs_destroy", responses={204: None, **error_responses(401, 403, 404)})
    def delete(self, request, gig_id: int):
        gig = selectors.gig_get_visible(user=request.user, gig_id=gig_id)
        services.gig_delete(gig=gig, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
