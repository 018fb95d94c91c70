"""marshmallow schemas of the API: they load requests, dump answers and generate the OpenAPI document."""
