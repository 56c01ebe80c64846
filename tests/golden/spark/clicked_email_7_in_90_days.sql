WITH `r1` AS (
  SELECT
    `t1`.`contactid` AS `k`
  FROM `interaction` AS `t1`
  WHERE
    NOT `t1`.`contactid` IS NULL
    AND (
      LOWER(TRANSLATE(`t1`.`type`, 'Σİ', 'σi')) = LOWER(TRANSLATE('email_click', 'Σİ', 'σi'))
      AND `t1`.`emailid` = 7
      AND `t1`.`ts` BETWEEN CAST('2026-07-29 12:00:00' AS TIMESTAMP) AND CAST('2026-10-27 12:00:00' AS TIMESTAMP)
    )
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
