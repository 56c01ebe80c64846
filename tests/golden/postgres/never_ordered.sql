WITH "r1" AS (
  SELECT
    "t1"."contactid" AS "k"
  FROM "order" AS "t1"
  WHERE
    NOT "t1"."contactid" IS NULL
)
SELECT
  "t0"."contactid"
FROM "contact" AS "t0"
WHERE
  "t0"."statecode" = 0
  AND (
    NOT "t0"."contactid" IS NULL
    AND NOT "t0"."contactid" IN (
      SELECT
        "k"
      FROM "r1"
    )
  )
ORDER BY
  "t0"."contactid"
