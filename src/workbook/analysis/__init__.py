"""Reading and writing up the results: result types, statistics, scores, verdicts and their
wording, number formatting, figures, the headline numbers, the compare page and the templates."""
