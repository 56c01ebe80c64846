SELECT
  "t0"."contactid"
FROM "contact" AS "t0"
WHERE
  "t0"."statecode" = 0
  AND (
    "t0"."createdon" BETWEEN CAST('2026-09-27 12:00:00' AS TIMESTAMP) AND CAST('2026-10-27 12:00:00' AS TIMESTAMP)
  )
ORDER BY
  "t0"."contactid"
