SELECT
  "t0"."eventid"
FROM "event" AS "t0"
WHERE
  "t0"."startdate" BETWEEN CAST('2026-10-27' AS DATE) AND CAST('2026-11-23' AS DATE)
ORDER BY
  "t0"."eventid"
