SELECT
  `t0`.`contactid`
FROM `contact` AS `t0`
WHERE
  `t0`.`statecode` = 0
  AND (
    `t0`.`country` <> ''
    AND NOT (
      LOWER(TRANSLATE(`t0`.`country`, 'Σİ', 'σi')) = LOWER(TRANSLATE('UK', 'Σİ', 'σi'))
    )
  )
ORDER BY
  `t0`.`contactid`
