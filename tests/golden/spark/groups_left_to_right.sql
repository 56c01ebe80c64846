WITH `r1` AS (
  SELECT
    `t1`.`contactid` AS `k`
  FROM `order` AS `t1`
  WHERE
    NOT `t1`.`contactid` IS NULL
  GROUP BY
    `t1`.`contactid`
  HAVING
    COALESCE(SUM(`t1`.`amount`), 0) >= 600
)
SELECT
  `t0`.`contactid`
FROM `contact` AS `t0`
WHERE
  `t0`.`statecode` = 0
  AND (
    (
      (
        `t0`.`tier` = 'Gold' OR `t0`.`contactid` IN (
          SELECT
            `k`
          FROM `r1`
        )
      )
      AND `t0`.`donotemail` = FALSE
    )
    AND NOT COALESCE(
      LOWER(TRANSLATE(`t0`.`country`, 'Σİ', 'σi')) = LOWER(TRANSLATE('de', 'Σİ', 'σi')),
      FALSE
    )
  )
ORDER BY
  `t0`.`contactid`
