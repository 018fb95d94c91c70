"""OpenAPI 3 description of the prediction API (served at /api/openapi.json)."""
from __future__ import annotations

SCORE = {
    "type": "object",
    "required": ["category", "category_index", "confidence"],
    "properties": {
        "category": {"type": "string", "example": "frog"},
        "category_index": {"type": "integer", "example": 6},
        "confidence": {"type": "number", "format": "float", "minimum": 0, "maximum": 1},
    },
}

PREDICTION = {
    "type": "object",
    "required": ["filename", "category", "category_index", "confidence", "unknown", "top_k"],
    "properties": {
        "filename": {"type": "string"},
        "category": {"type": "string", "nullable": True,
                     "description": "Best class; null when the model is not sure (below its threshold)."},
        "category_index": {"type": "integer", "nullable": True,
                           "description": "Position of the class in model.classes; null when unknown."},
        "confidence": {"type": "number", "format": "float", "description": "Probability of the best class."},
        "unknown": {"type": "boolean", "description": "True when the confidence is below the model's threshold."},
        "top_k": {"type": "array", "items": {"$ref": "#/components/schemas/Score"}},
    },
}

FILE_ERROR = {
    "type": "object",
    "required": ["filename", "error"],
    "properties": {"filename": {"type": "string"}, "error": {"type": "string", "example": "Not an image."}},
}

RESPONSE = {
    "type": "object",
    "required": ["model", "predictions"],
    "properties": {
        "model": {
            "type": "object",
            "required": ["id", "name", "classes", "architecture"],
            "properties": {
                "id": {"type": "integer"}, "name": {"type": "string"}, "architecture": {"type": "string"},
                "classes": {"type": "array", "items": {"type": "string"}},
            },
        },
        "predictions": {
            "type": "array", "description": "One entry per uploaded file, in upload order.",
            "items": {"oneOf": [{"$ref": "#/components/schemas/Prediction"},
                                {"$ref": "#/components/schemas/FileError"}]},
        },
    },
}

ERROR = {
    "type": "object",
    "required": ["error", "status"],
    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
}

UPLOAD = {
    "type": "object",
    "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"},
                 "description": "One or more images (repeat the field). 'files' is accepted too."},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "model": {"type": "integer", "description": "Model id (POST /predict only); default: your default "
                                                    "model, else the site's default public model."},
        "top_k": {"type": "integer", "minimum": 1, "default": 3},
        "format": {"type": "string", "enum": ["json", "csv"], "default": "json",
                   "description": "csv answers text/csv, one row per file (same as Accept: text/csv)."},
    },
}

CSV_EXAMPLE = ("filename,category,category_index,confidence,unknown,error\r\n"
               "cat1.jpg,cat,0,0.973214,false,\r\nblurry.jpg,,,0.412500,true,\r\nnotes.txt,,,,,Not an image.\r\n")


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _operation(summary: str, with_model_field: bool) -> dict:
    params = [{"name": "top_k", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
              {"name": "format", "in": "query", "required": False,
               "schema": {"type": "string", "enum": ["json", "csv"]},
               "description": "csv: answer text/csv (also chosen by the header Accept: text/csv)."}]
    if with_model_field:
        params.append({"name": "model", "in": "query", "required": False, "schema": {"type": "integer"}})
    else:
        params.append({"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}})
    return {
        "summary": summary,
        "parameters": params,
        "security": [{"bearerAuth": []}, {"cookieSession": []}, {}],
        "requestBody": {"required": True,
                        "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/Upload"}}}},
        "responses": {
            "200": {"description": "Predictions in upload order; a bad file gets an error entry (JSON) or a "
                                   "row with only filename and error (CSV). Errors of the whole request "
                                   "are always JSON.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}},
                                "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}}},
            "400": _error("No file was sent, or a field is invalid."),
            "401": _error("No login, no valid token, and no public default model."),
            "403": _error("A browser session call from another website."),
            "404": _error("The model does not exist, or you may not use it."),
            "409": _error("The model has not finished training."),
            "413": _error("Too many files or too large a request."),
        },
    }


def openapi_spec(version: str = "1.0") -> dict:
    """The OpenAPI 3.0 document for POST /predict and POST /models/{id}/predict."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Image Classifier Studio API", "version": version,
                 "description": "Classify images with a trained model. Authenticate with a personal API "
                                "token (Authorization: Bearer ...) from the API page; public models need none."},
        "paths": {
            "/predict": {"post": _operation("Classify images with the chosen or default model", True)},
            "/models/{id}/predict": {"post": _operation("Classify images with one model", False)},
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "A personal API token."},
                "cookieSession": {"type": "apiKey", "in": "cookie", "name": "session",
                                  "description": "Browser session; needs the X-CSRFToken header."},
            },
            "schemas": {"Score": SCORE, "Prediction": PREDICTION, "FileError": FILE_ERROR,
                        "PredictResponse": RESPONSE, "Error": ERROR, "Upload": UPLOAD},
        },
    }
