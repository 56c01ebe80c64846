WITH `r1` AS (
  SELECT
    `t1`.`contactid` AS `k`
  FROM `interaction` AS `t1`
  WHERE
    NOT `t1`.`contactid` IS NULL
    AND LOWER(TRANSLATE(`t1`.`type`, 'Σİ', 'σi')) = LOWER(TRANSLATE('web_visit', 'Σİ', 'σi'))
  GROUP BY
    `t1`.`contactid`
  HAVING
    COUNT(*) >= 3
)
SELECT
  `t0`.`contactid`
FROM `contact` AS `t0`
WHERE
  `t0`.`statecode` = 0
  AND (
    `t0`.`contactid` IN (
      SELECT
        `k`
      FROM `r1`
    )
  )
ORDER BY
  `t0`.`contactid`
