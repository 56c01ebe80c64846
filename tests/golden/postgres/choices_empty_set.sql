SELECT
  "t0"."contactid"
FROM "contact" AS "t0"
WHERE
  "t0"."statecode" = 0
  AND (
    (
      (
        CARDINALITY("t0"."interests") > 0
        AND NOT (
          CASE
            WHEN 'golf' IS NULL
            THEN NULL
            ELSE COALESCE('golf' = ANY(
              "t0"."interests"
            ), FALSE)
          END
        )
      )
      OR COALESCE(CARDINALITY("t0"."interests"), 0) = 0
    )
  )
ORDER BY
  "t0"."contactid"
