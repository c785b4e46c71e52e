"""Full-text search over tours: a weighted tsvector (title A, summary B, description C) per language.

- ``tours_tourtranslation.search_vector``: a stored generated column; the row carries its own language.
- ``tours_tour.search_vector``: filled by a trigger, because the tour's language is its tenant's default language,
  which lives in another table (a generated column may only read its own row). Changing a tenant's default
  language needs the tours re-saved (any UPDATE of the row recomputes it).
- ``tourops_search_config(language)``: language code → text search configuration (en english, fr french,
  de german, es spanish, it italian, pt portuguese, nb/nn/no norwegian, anything else simple). Marked IMMUTABLE so
  the generated column may use it; the mapping is fixed in this function, so it is.
- GIN indexes on both vectors (the tour's one partial: only published tours are searched).

The columns are not model fields: nothing in Python writes them, ``inventory.search`` reads them with SQL.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION tourops_search_config(language text) RETURNS regconfig
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
BEGIN
    RETURN CASE lower(split_part(coalesce(language, ''), '-', 1))
        WHEN 'en' THEN 'pg_catalog.english'
        WHEN 'fr' THEN 'pg_catalog.french'
        WHEN 'de' THEN 'pg_catalog.german'
        WHEN 'es' THEN 'pg_catalog.spanish'
        WHEN 'it' THEN 'pg_catalog.italian'
        WHEN 'pt' THEN 'pg_catalog.portuguese'
        WHEN 'nb' THEN 'pg_catalog.norwegian'
        WHEN 'nn' THEN 'pg_catalog.norwegian'
        WHEN 'no' THEN 'pg_catalog.norwegian'
        ELSE 'pg_catalog.simple'
    END::regconfig;
END
$$;

CREATE FUNCTION tourops_tour_document(config regconfig, title text, summary text, description text)
RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT setweight(to_tsvector(config, coalesce(title, '')), 'A')
        || setweight(to_tsvector(config, coalesce(summary, '')), 'B')
        -- the description is formatted text: tags are not words
        || setweight(to_tsvector(config, regexp_replace(coalesce(description, ''), '<[^>]*>', ' ', 'g')), 'C')
$$;

ALTER TABLE tours_tour ADD COLUMN search_vector tsvector;

CREATE FUNCTION tours_tour_search_vector() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.search_vector := tourops_tour_document(
        tourops_search_config((SELECT default_language FROM tenants_tenant WHERE id = NEW.tenant_id)),
        NEW.title, NEW.summary, NEW.description
    );
    RETURN NEW;
END
$$;

CREATE TRIGGER tours_tour_search_vector
    BEFORE INSERT OR UPDATE OF title, summary, description, tenant_id ON tours_tour
    FOR EACH ROW EXECUTE FUNCTION tours_tour_search_vector();

-- Existing rows: row-level security (forced, even for the owner) shows a tenant's rows only with its id set.
DO $$
DECLARE tenant record;
BEGIN
    FOR tenant IN SELECT id FROM tenants_tenant LOOP
        PERFORM set_config('app.tenant_id', tenant.id::text, true);
        UPDATE tours_tour SET title = title WHERE tenant_id = tenant.id;
    END LOOP;
    PERFORM set_config('app.tenant_id', '', true);
END
$$;

CREATE INDEX tour_search_published ON tours_tour USING gin (search_vector) WHERE status = 'published';

ALTER TABLE tours_tourtranslation ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (
        tourops_tour_document(tourops_search_config(language), title, summary, description)
    ) STORED;

CREATE INDEX tourtranslation_search ON tours_tourtranslation USING gin (search_vector);
"""

BACKWARD = r"""
DROP INDEX IF EXISTS tourtranslation_search;
ALTER TABLE tours_tourtranslation DROP COLUMN IF EXISTS search_vector;
DROP INDEX IF EXISTS tour_search_published;
DROP TRIGGER IF EXISTS tours_tour_search_vector ON tours_tour;
DROP FUNCTION IF EXISTS tours_tour_search_vector();
ALTER TABLE tours_tour DROP COLUMN IF EXISTS search_vector;
DROP FUNCTION IF EXISTS tourops_tour_document(regconfig, text, text, text);
DROP FUNCTION IF EXISTS tourops_search_config(text);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tours", "0001_initial"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
