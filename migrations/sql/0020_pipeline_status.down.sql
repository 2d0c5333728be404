DROP TABLE pipeline_counts;
DROP TABLE pipeline_components;
