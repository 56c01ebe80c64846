SELECT
  "t0"."contactid"
FROM "contact" AS "t0"
WHERE
  "t0"."statecode" = 0
  AND (
    (
      "t0"."jobtitle" IS NULL OR "t0"."jobtitle" = ''
    )
  )
ORDER BY
  "t0"."contactid"
