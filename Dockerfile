# PartnerHub application image: the same image runs the web server, the Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# WeasyPrint renders the PDF review packs through Pango; the fonts ship in the image, nothing is
# fetched at render time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libfontconfig1 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 partnerhub
WORKDIR /app

# Runtime dependencies first, at the exact versions of constraints.txt, so that a code change
# reuses this layer.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# Editable, so that settings find templates/ and static/ next to the code in /app.
RUN pip install --no-deps -e . \
    && PRODUCTION=1 SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && mkdir -p var/media \
    && chown -R partnerhub:partnerhub var

USER partnerhub
EXPOSE 8000
CMD ["gunicorn", "partnerhub.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
