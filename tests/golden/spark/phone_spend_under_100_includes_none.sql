WITH `r1` AS (
  SELECT
    `t1`.`contactid` AS `k`
  FROM `order` AS `t1`
  WHERE
    NOT `t1`.`contactid` IS NULL
    AND LOWER(TRANSLATE(`t1`.`channel`, 'Σİ', 'σi')) = LOWER(TRANSLATE('phone', 'Σİ', 'σi'))
  GROUP BY
    `t1`.`contactid`
  HAVING
    NOT COALESCE(COALESCE(SUM(`t1`.`amount`), 0) < 100, FALSE)
)
SELECT
  `t0`.`contactid`
FROM `contact` AS `t0`
WHERE
  `t0`.`statecode` = 0
  AND (
    NOT `t0`.`contactid` IS NULL
    AND NOT `t0`.`contactid` IN (
      SELECT
        `k`
      FROM `r1`
    )
  )
ORDER BY
  `t0`.`contactid`
