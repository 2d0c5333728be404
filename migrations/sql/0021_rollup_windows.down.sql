DROP TABLE program_windows;
DROP TABLE card_windows;
DROP TABLE rollup_window_state;
