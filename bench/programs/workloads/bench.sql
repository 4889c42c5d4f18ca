-- bench.sql — the SQLite workload of bench/programs/run.sh, written for
-- this benchmark: a small shop in an in-memory database. It creates and
-- fills three tables (30,000 customers, 2,000 products and 200,000 orders
-- at @scale 1) from a linear congruential generator in recursive CTEs, so
-- every build sees the same data; builds indexes; then runs joins,
-- aggregates, window functions, string matching, updates and deletes.
-- Only aggregated results are printed, and every ORDER BY is total, so the
-- output depends on nothing but the data.
--
--   sqlite3 -bail -cmd '.parameter set @scale 1' < bench.sql
--
-- (run.sh passes @scale: 1 is the full size, a fraction a quicker run.)

CREATE TABLE region (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO region VALUES (1, 'north'), (2, 'south'), (3, 'east'), (4, 'west'), (5, 'centre');

CREATE TABLE category (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO category VALUES (0, 'home'), (1, 'office'), (2, 'garden'), (3, 'sport'),
    (4, 'kitchen'), (5, 'toys'), (6, 'books');

CREATE TABLE customer (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    region_id INTEGER NOT NULL REFERENCES region (id),
    joined INTEGER NOT NULL            -- day number, 0..1459
);

CREATE TABLE product (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    category_id INTEGER NOT NULL REFERENCES category (id),
    price_cents INTEGER NOT NULL
);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customer (id),
    product_id INTEGER NOT NULL REFERENCES product (id),
    qty INTEGER NOT NULL,
    day INTEGER NOT NULL,
    status TEXT NOT NULL
);

-- r is the generator's state; each row derives its fields from it.
WITH RECURSIVE g (i, r) AS (
    SELECT 1, 20240101
    UNION ALL
    SELECT i + 1, (r * 1103515245 + 12345) % 2147483648 FROM g
    WHERE i < CAST(30000 * @scale AS INTEGER)
)
INSERT INTO customer (id, name, email, region_id, joined)
SELECT i,
       substr('BCDFGHKLMNPRSTVZ', 1 + r % 16, 1) || substr('aeiou', 1 + (r / 16) % 5, 1)
           || substr('lmnrstvz', 1 + (r / 80) % 8, 1) || substr('aeiouy', 1 + (r / 640) % 6, 1)
           || ' ' || substr('ABCDEFGHIJKLMNOPRSTVW', 1 + (r / 3840) % 21, 1) || '.',
       'user' || i || '@' || substr('mail.shop.post.inbox.', 1 + 5 * ((r / 7) % 4), 4) || '.test',
       1 + (r / 65536) % 5,
       (r / 1024) % 1460
FROM g;

WITH RECURSIVE g (i, r) AS (
    SELECT 1, 777
    UNION ALL
    SELECT i + 1, (r * 1103515245 + 12345) % 2147483648 FROM g WHERE i < 2000
)
INSERT INTO product (id, title, category_id, price_cents)
SELECT i,
       rtrim(substr('steel wooden plasticglass paper cotton', 1 + 6 * (r % 6), 6)) || ' '
           || rtrim(substr('chair table lamp  shelf box   mug   ', 1 + 6 * ((r / 8) % 6), 6))
           || ' #' || i,
       (r / 64) % 7,
       99 + (r / 128) % 20000
FROM g;

WITH RECURSIVE g (i, r) AS (
    SELECT 1, 4242
    UNION ALL
    SELECT i + 1, (r * 1103515245 + 12345) % 2147483648 FROM g
    WHERE i < CAST(200000 * @scale AS INTEGER)
)
INSERT INTO orders (id, customer_id, product_id, qty, day, status)
SELECT i,
       1 + (r / 8) % CAST(30000 * @scale AS INTEGER),
       -- popular products first: the smaller of two draws
       1 + min((r / 4096) % 2000, (r / 32) % 2000),
       1 + (r / 256) % 5,
       (r / 2048) % 1460,
       CASE (r / 65536) % 10 WHEN 0 THEN 'returned' WHEN 1 THEN 'pending' ELSE 'shipped' END
FROM g;

CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_product ON orders (product_id);
CREATE INDEX orders_day_status ON orders (day, status);
CREATE INDEX customer_region ON customer (region_id, joined);
CREATE INDEX customer_name ON customer (name);

SELECT 'rows', (SELECT count(*) FROM customer), (SELECT count(*) FROM product),
       (SELECT count(*) FROM orders);

-- Revenue by region and category (a four-way join and GROUP BY).
SELECT r.name, c.name, count(*), sum(o.qty), sum(o.qty * p.price_cents)
FROM orders o
JOIN customer cu ON cu.id = o.customer_id
JOIN region r ON r.id = cu.region_id
JOIN product p ON p.id = o.product_id
JOIN category c ON c.id = p.category_id
WHERE o.status <> 'returned'
GROUP BY r.name, c.name
ORDER BY r.name, c.name;

-- The twenty best customers, with their rank in their region (a window
-- function over an aggregate).
SELECT * FROM (
    SELECT cu.id, cu.name, r.name AS region, sum(o.qty * p.price_cents) AS spent,
           rank() OVER (PARTITION BY r.id ORDER BY sum(o.qty * p.price_cents) DESC, cu.id) AS rank_in_region
    FROM customer cu
    JOIN orders o ON o.customer_id = cu.id
    JOIN product p ON p.id = o.product_id
    JOIN region r ON r.id = cu.region_id
    GROUP BY cu.id
)
ORDER BY spent DESC, id
LIMIT 20;

-- Monthly (30-day) totals with a running sum and a 3-month moving average.
SELECT month, orders, revenue,
       sum(revenue) OVER (ORDER BY month) AS running,
       round(avg(revenue) OVER (ORDER BY month ROWS BETWEEN 2 PRECEDING AND CURRENT ROW), 2) AS moving
FROM (
    SELECT o.day / 30 AS month, count(*) AS orders, sum(o.qty * p.price_cents) AS revenue
    FROM orders o JOIN product p ON p.id = o.product_id
    GROUP BY month
)
ORDER BY month;

-- Customers who never returned anything and ordered from at least five
-- categories (correlated subqueries, NOT EXISTS, COUNT DISTINCT).
SELECT count(*), sum(cu.joined % 7)
FROM customer cu
WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = cu.id AND o.status = 'returned')
  AND (SELECT count(DISTINCT p.category_id)
       FROM orders o JOIN product p ON p.id = o.product_id
       WHERE o.customer_id = cu.id) >= 5;

-- String work: names by pattern, e-mail domains, product words.
SELECT substr(name, 1, 1) AS initial, count(*), min(name), max(name)
FROM customer WHERE name LIKE '%a% %' GROUP BY initial ORDER BY initial;
SELECT substr(email, instr(email, '@') + 1) AS domain, count(*), sum(length(email))
FROM customer GROUP BY domain ORDER BY domain;
SELECT substr(title, 1, instr(title, ' ') - 1) AS material, count(*), avg(price_cents)
FROM product GROUP BY material ORDER BY material;

-- Products above their category's average price, with sales (a join
-- against a derived table).
SELECT count(*), sum(sold) FROM (
    SELECT p.id, (SELECT coalesce(sum(qty), 0) FROM orders o WHERE o.product_id = p.id) AS sold
    FROM product p
    JOIN (SELECT category_id, avg(price_cents) AS mean FROM product GROUP BY category_id) a
      ON a.category_id = p.category_id
    WHERE p.price_cents > a.mean
);

-- Pending orders older than 60 days are shipped, returns of cheap
-- products are deleted, every price rises by 3%; then the totals again.
UPDATE orders SET status = 'shipped' WHERE status = 'pending' AND day < 1400;
DELETE FROM orders WHERE status = 'returned'
  AND product_id IN (SELECT id FROM product WHERE price_cents < 5000);
UPDATE product SET price_cents = price_cents * 103 / 100;
SELECT status, count(*), sum(qty) FROM orders GROUP BY status ORDER BY status;
SELECT c.name, sum(o.qty * p.price_cents), round(avg(o.qty * p.price_cents), 3)
FROM orders o JOIN product p ON p.id = o.product_id JOIN category c ON c.id = p.category_id
GROUP BY c.name ORDER BY c.name;

-- Per-day order counts sorted by a computed key (a large sort).
SELECT sum(k * n) % 1000000007 FROM (
    SELECT row_number() OVER (ORDER BY (day * 7919) % 1460, status, day) AS k, count(*) AS n
    FROM orders GROUP BY day, status
);

-- A self-join: pairs of customers in the same region who joined on the
-- same day.
SELECT count(*) FROM customer a JOIN customer b
  ON a.region_id = b.region_id AND a.joined = b.joined AND a.id < b.id;
