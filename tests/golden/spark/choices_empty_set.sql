SELECT
  `t0`.`contactid`
FROM `contact` AS `t0`
WHERE
  `t0`.`statecode` = 0
  AND (
    (
      (
        ARRAY_SIZE(`t0`.`interests`) > 0
        AND NOT (
          ARRAY_CONTAINS(`t0`.`interests`, 'golf')
        )
      )
      OR COALESCE(ARRAY_SIZE(`t0`.`interests`), 0) = 0
    )
  )
ORDER BY
  `t0`.`contactid`
