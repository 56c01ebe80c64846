SELECT
  "t0"."leadid"
FROM "lead" AS "t0"
WHERE
  (
    LOWER("t0"."subject") LIKE LOWER('%demo%') ESCAPE '!'
    AND "t0"."parentaccountid" IN (
      SELECT
        "t1"."accountid"
      FROM "account" AS "t1"
      WHERE
        "t1"."country" <> ''
    )
  )
ORDER BY
  "t0"."leadid"
