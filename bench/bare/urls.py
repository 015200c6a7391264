from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class Accept(APIView):
    def post(self, request):
        return Response({"status": "accepted", "keys": len(request.data)}, status=202)


urlpatterns = [path("api/v1/events", Accept.as_view())]
