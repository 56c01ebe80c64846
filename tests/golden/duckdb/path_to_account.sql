SELECT
  "t0"."contactid"
FROM "contact" AS "t0"
WHERE
  "t0"."statecode" = 0
  AND (
    "t0"."parentaccountid" IN (
      SELECT
        "t1"."accountid"
      FROM "account" AS "t1"
      WHERE
        "t1"."industry" <> '' AND NOT (
          "t1"."industry" = 'Retail'
        )
    )
  )
ORDER BY
  "t0"."contactid"
