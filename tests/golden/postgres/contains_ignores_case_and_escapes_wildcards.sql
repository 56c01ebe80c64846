SELECT
  "t0"."contactid"
FROM "contact" AS "t0"
WHERE
  "t0"."statecode" = 0
  AND (
    (
      LOWER("t0"."jobtitle") LIKE LOWER('%MANAGER%') ESCAPE '!'
      OR LOWER("t0"."jobtitle") LIKE LOWER('R!_D%') ESCAPE '!'
    )
  )
ORDER BY
  "t0"."contactid"
